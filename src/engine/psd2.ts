/**
 * PSD2 strong customer authentication (docs/psd2.md): dynamic linking of an SCA to one payment
 * (RTS Art. 5), the exemptions (Art. 13, 16, 18) and the failed-attempt lockout (Art. 4(3)(d)).
 * Pure: the service gathers the store's facts and carries out the atomic writes the decision asks for.
 */
import { electronicFormatIBAN, isValidIBAN } from 'ibantools'
import type { Session, Unmet } from './assurance.js'
import type { ExemptionKind, Facts, Policy, Psd2Facts, Transaction } from './model.js'

/** Amounts: up to 11 integer digits and 4 decimals, so the scaled value is an exact integer. */
export const AMOUNT_PATTERN = /^(0|[1-9][0-9]{0,10})(\.[0-9]{1,4})?$/
const SCALE = 10_000

/** A decimal string as an integer number of 1/10,000 units; undefined when it is not one. */
export function parseAmount (value: unknown): number | undefined {
  if (typeof value !== 'string' || !AMOUNT_PATTERN.test(value)) return undefined
  const [whole, fraction = ''] = value.split('.')
  return Number(whole) * SCALE + Number(fraction.padEnd(4, '0'))
}

/** The canonical decimal form: "12.50" and "12.5" are the same amount. */
export function canonicalAmount (scaled: number): string {
  const whole = Math.floor(scaled / SCALE)
  const fraction = String(scaled % SCALE).padStart(4, '0').replace(/0+$/, '')
  return fraction === '' ? String(whole) : `${whole}.${fraction}`
}

/** IBAN as banks compare it: spaces removed, upper case (ibantools' electronic format). */
export const normalizeIban = (iban: string): string => electronicFormatIBAN(iban) ?? ''

/** ISO 13616: the country's length and format, and the mod-97 check digits (ibantools). */
export const ibanValid = (iban: string): boolean => isValidIBAN(iban)

/** Payee names compare after Unicode NFC, trimming and collapsing whitespace; case counts. */
export const normalizeName = (name: string): string => name.normalize('NFC').trim().replace(/\s+/g, ' ')

/** The RFC 9396 authorization_details entry a client must request for this payment. */
export function authorizationDetailsFor (tx: Transaction): Array<Record<string, unknown>> {
  return [{
    type: 'payment_initiation',
    instructedAmount: { currency: tx.currency, amount: tx.amount },
    creditorName: tx.payee.name,
    creditorAccount: { iban: tx.payee.iban }
  }]
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Does the token's `authorization_details` hold a payment_initiation entry for exactly this payment? */
export function linksTo (claims: Record<string, unknown>, tx: Transaction): boolean {
  const details = claims.authorization_details
  if (!Array.isArray(details)) return false
  for (const d of details) {
    if (!isObject(d) || d.type !== 'payment_initiation') continue
    const amount = d.instructedAmount
    if (!isObject(amount) || amount.currency !== tx.currency) continue
    const scaled = parseAmount(typeof amount.amount === 'number' ? String(amount.amount) : amount.amount)
    if (scaled !== tx.scaled) continue
    if (typeof d.creditorName !== 'string' || normalizeName(d.creditorName) !== normalizeName(tx.payee.name)) continue
    const account = d.creditorAccount
    if (!isObject(account) || typeof account.iban !== 'string' || normalizeIban(account.iban) !== tx.payee.iban) continue
    return true
  }
  return false
}

/** What a bound policy's session lacks besides its requirement: a verified token, the linked details, an unspent SCA. */
export function bindUnmet (session: Session, facts: Facts, tx: Transaction): Unmet[] {
  if (facts.request.tokenVerified !== true) return ['verified_token']
  if (!linksTo(facts.request.claims, tx)) return ['authorization_details']
  if (session.authTime === undefined) return ['freshness']
  const psd2 = facts.psd2
  if (psd2?.status !== 'found' || psd2.state.linkedConsumed !== false) return ['consumed']
  return []
}

/** The amount in EUR cents (rounded up), or undefined when the currency has no conversion. */
export function eurCents (tx: Transaction, conversion: Readonly<Record<string, number>>): number | undefined {
  if (tx.currency === 'EUR') return Math.ceil(tx.scaled / 100)
  const rate = conversion[tx.currency]
  // Rounded to a millionth of a cent first: 30.00 at 1.1 is 3300 cents, not 3301 (binary noise).
  return rate === undefined ? undefined : Math.ceil(Number(((tx.scaled * rate) / 100).toFixed(6)))
}

export interface ExemptionResult {
  kind: ExemptionKind
  cents: number
  /** For lowValue: the limits the store checks atomically when it counts the payment. */
  limit?: { count: number, cents: number }
  figures: Record<string, unknown>
}

/** Why no exemption applied (for the trace), or the exemption that applies. */
export function exemptionFor (policy: Policy, tx: Transaction, facts: Facts): ExemptionResult | { none: string } {
  const ex = policy.exemptions
  if (!ex) return { none: 'the policy has no exemptions' }
  const psd2 = facts.psd2
  if (psd2?.status !== 'found') return { none: `no exemption: ${psd2?.status === 'unavailable' ? psd2.reason : 'exemption state unknown'} (fails closed)` }
  const cents = eurCents(tx, ex.conversion)
  if (cents === undefined) return { none: `no exemption: the policy gives no conversion for ${tx.currency}` }
  const state: Psd2Facts = psd2.state
  const amountEur = cents / 100
  if (ex.trustedBeneficiary && state.trustedPayee === true) {
    return { kind: 'trustedBeneficiary', cents, figures: { amountEur } }
  }
  const risk = facts.request.context.riskScore
  if (ex.tra && cents <= ex.tra.maxAmount && typeof risk === 'number' && risk < ex.tra.riskScoreBelow) {
    return { kind: 'tra', cents, figures: { amountEur, riskScore: risk, riskScoreBelow: ex.tra.riskScoreBelow, maxAmountEur: ex.tra.maxAmount / 100 } }
  }
  const lv = ex.lowValue
  if (lv && cents <= lv.maxAmount) {
    const { count, cents: total } = state.exempted
    if (count < lv.maxCount && total + cents <= lv.maxTotal) {
      return {
        kind: 'lowValue',
        cents,
        limit: { count: lv.maxCount, cents: lv.maxTotal },
        figures: { amountEur, exemptedSinceSca: count, totalEur: (total + cents) / 100, maxCount: lv.maxCount, maxTotalEur: lv.maxTotal / 100 }
      }
    }
    return { none: `no exemption: ${count} payments (${total / 100} EUR) exempted since the last SCA; low-value limit ${lv.maxCount} payments or ${lv.maxTotal / 100} EUR` }
  }
  return { none: 'no exemption applies' }
}

/** The subject is locked out of this policy's step-ups: the failures within its window, and until when. */
export function lockedOut (policy: Policy, facts: Facts, now: number): { failures: number, until: number } | undefined {
  const lockout = policy.lockout
  const psd2 = facts.psd2
  if (!lockout || psd2?.status !== 'found') return undefined
  const recent = psd2.state.failures.filter(at => at > now - lockout.window)
  if (recent.length < lockout.attempts) return undefined
  return { failures: recent.length, until: recent[recent.length - lockout.attempts]! + lockout.window }
}

export const LOCKED_MESSAGE = 'Too many failed authentication attempts. Try again later.'
