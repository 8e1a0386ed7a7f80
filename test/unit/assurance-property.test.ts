// Properties of the v2 factor model, over random amr / acr sets: removing evidence never raises
// the AAL (mfa's documented exception aside), the AAL never exceeds what the named factors
// justify, and a session holding only "have" factors is never multi-factor.
import t from 'tap'
import fc from 'fast-check'
import { amrAssurance, buildAssurance, DEFAULT_ACR, evaluateSession } from '../../src/engine/assurance.js'

const assurance = buildAssurance()
const NOW = 1_800_000_000

/** Every value the model knows (RFC 8176's registry and the common ones), and some it does not. */
const VALUES = [
  'face', 'fpt', 'geo', 'hwk', 'iris', 'kba', 'mca', 'mfa', 'otp', 'pin', 'pop', 'pwd', 'rba', 'retina', 'sc', 'sms', 'swk', 'tel', 'user', 'vbm', 'wia',
  'passkey', 'webauthn', 'fido', 'totp', 'email', 'unknown-1', '__proto__'
]
const ACRS = [...Object.keys(DEFAULT_ACR), 'urn:unknown:acr']
/** have values of classes that do not verify the user themselves, plus values that count for nothing. */
const HAVE_ONLY = ['hwk', 'sc', 'swk', 'pop', 'otp', 'totp', 'sms', 'tel', 'email', 'user', 'kba', 'geo', 'unknown-1']

const amrArb = fc.uniqueArray(fc.constantFrom(...VALUES), { maxLength: 7 })
const acrArb = fc.option(fc.constantFrom(...ACRS), { nil: undefined })

const classOf = (v: string): ReturnType<typeof assurance.amrToFactor.get> => assurance.amrToFactor.get(v)
const namesHave = (amr: readonly string[]): boolean => amr.some(v => classOf(v)?.category === 'have')
const aalOf = (amr: string[], acr?: string): number =>
  evaluateSession({ amr, ...(acr !== undefined ? { acr } : {}), auth_time: NOW }, assurance, NOW).aal

t.test('removing an amr value never raises the AAL (except mfa standing in once no have factor is named)', async t => {
  fc.assert(fc.property(amrArb, acrArb, (amr, acr) => {
    const before = aalOf(amr, acr)
    amr.forEach((_, i) => {
      const smaller = amr.filter((_, j) => j !== i)
      const after = aalOf(smaller, acr)
      if (after <= before) return
      // The one exception the model documents: ["pwd","email","mfa"] is AAL 1, ["pwd","mfa"] AAL 2.
      const mfaStandsIn = smaller.includes('mfa') && namesHave(amr) && !namesHave(smaller)
      if (!mfaStandsIn || after > 2) throw new Error(`removing ${amr[i]} from ${JSON.stringify(amr)} (acr ${acr}) raised the AAL ${before} -> ${after}`)
    })
  }), { numRuns: 3000 })
  t.pass('3000 random sessions')
})

t.test('removing the acr never raises the AAL, and never lowers it below what amr proves', async t => {
  fc.assert(fc.property(amrArb, fc.constantFrom(...ACRS), (amr, acr) => {
    const withAcr = aalOf(amr, acr)
    const without = aalOf(amr)
    return without <= withAcr && withAcr === Math.max(without, assurance.acr.get(acr)?.aal ?? 0)
  }), { numRuns: 2000 })
  t.pass('2000 random sessions')
})

t.test('the AAL never exceeds what the named factors justify', async t => {
  fc.assert(fc.property(amrArb, amr => {
    const { aal, multiFactor } = amrAssurance(amr, assurance)
    const classes = amr.map(classOf).filter(c => c !== undefined)
    const haves = classes.filter(c => c.category === 'have')
    const verifies = classes.some(c => c.category !== 'have') || amr.some(v => ['pin', 'fpt', 'face', 'iris', 'retina', 'vbm'].includes(v))
    const mfaStandIn = amr.includes('mfa') && haves.length === 0
    // Nothing counted: AAL 0.
    if (classes.length === 0 && !mfaStandIn && aal !== 0) return false
    // Never above the best named have factor (or mfa's AAL 2 when none is named).
    const ceiling = Math.max(mfaStandIn ? 2 : 0, ...haves.map(h => h.maxAal), classes.length > 0 ? 1 : 0)
    if (aal > ceiling) return false
    // AAL 2 or more needs two categories: a have factor with something you know or are, or a
    // have class that verifies the user itself, or mfa standing in for an unnamed one.
    if (aal >= 2 && !(mfaStandIn || haves.some(h => h.multiFactor || verifies))) return false
    // AAL 3 needs a have factor of AAL 3 that is multi-factor with what else was named.
    if (aal === 3 && !haves.some(h => h.maxAal === 3 && (verifies || h.multiFactor))) return false
    // `user` and `kba` add nothing.
    const stripped = amr.filter(v => v !== 'user' && v !== 'kba')
    if (amrAssurance(stripped, assurance).aal !== aal) return false
    return multiFactor === (aal >= 2 || (aal === 1 && haves.some(h => h.maxAal === 1) && verifies))
  }), { numRuns: 5000 })
  t.pass('5000 random amr lists')
})

t.test('a session holding only have factors is never multi-factor', async t => {
  fc.assert(fc.property(fc.uniqueArray(fc.constantFrom(...HAVE_ONLY), { minLength: 1, maxLength: 6 }), amr => {
    const r = amrAssurance(amr, assurance)
    return !r.multiFactor && r.aal <= 1
  }), { numRuns: 2000 })
  t.pass('2000 random have-only amr lists')
})
