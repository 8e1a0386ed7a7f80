/**
 * A real OpenID Provider (the `oidc-provider` package) for the tests: JWT access tokens for the
 * API resource carrying acr, amr and auth_time; a login the test drives (password, or password
 * and a second factor when the authorization request asks for stronger acr_values); a login
 * prompt whenever the session's acr is not among the requested acr_values, as an AS that
 * honours RFC 9470 does; and key rotation (a new provider instance, new keys, same URL).
 *
 * Rich Authorization Requests (RFC 9396) for PSD2 payments: an authorization request may carry
 * `authorization_details` of type `payment_initiation` (checked by `validate`); each such request
 * asks for a fresh login with a second factor (strong customer authentication, one per payment),
 * the user consents to exactly the payments shown (`consents`), and the access token carries them
 * in its `authorization_details` claim beside acr, amr and auth_time.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import { exportJWK, generateKeyPair } from 'jose'
import { Provider, errors, interactionPolicy } from 'oidc-provider'

export const RESOURCE = 'https://api.example.com'
export const CLIENT = { id: 'bank-app', secret: 'bank-app-secret-0123456789', redirect: 'http://127.0.0.1/callback' }
export const AAL1 = 'http://idmanagement.gov/ns/assurance/aal/1'
export const AAL2 = 'http://idmanagement.gov/ns/assurance/aal/2'

/** An RFC 9396 authorization details entry of type `payment_initiation`, the shape the PDP asks for. */
export interface PaymentInitiation {
  type: 'payment_initiation'
  instructedAmount: { currency: string, amount: string }
  creditorName: string
  creditorAccount: { iban: string }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** What the provider accepts as a payment: the fields a bank needs to show the user and execute it. */
function validatePayment (detail: Record<string, unknown>): void {
  const amount = detail.instructedAmount
  const account = detail.creditorAccount
  const problem
    = !isObject(amount)
      ? 'instructedAmount: required'
      : typeof amount.currency !== 'string' || !/^[A-Z]{3}$/.test(amount.currency)
        ? 'instructedAmount.currency: an ISO 4217 code'
        : typeof amount.amount !== 'string' || !/^\d{1,12}(\.\d{1,4})?$/.test(amount.amount)
          ? 'instructedAmount.amount: a decimal string'
          : typeof detail.creditorName !== 'string' || detail.creditorName.trim() === '' || detail.creditorName.length > 140
            ? 'creditorName: 1 to 140 characters'
            : !isObject(account) || typeof account.iban !== 'string' || !/^[A-Z]{2}[0-9]{2}[A-Z0-9 ]{11,36}$/i.test(account.iban)
                ? 'creditorAccount.iban: required'
                : undefined
  if (problem !== undefined) throw new errors.InvalidAuthorizationDetails(`payment_initiation: ${problem}`)
}

const paymentsIn = (params: { authorization_details?: unknown }): unknown[] => {
  if (typeof params.authorization_details !== 'string') return []
  const details = JSON.parse(params.authorization_details) as unknown
  return Array.isArray(details) ? details.filter(d => isObject(d) && d.type === 'payment_initiation') : []
}

async function signingKey (kid: string): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' }
}

export class OpenIdProvider {
  server: Server
  issuer = ''
  private provider: Provider | undefined
  private generation = 0
  /** The amr of the next login, decided from what the authorization request asks. */
  logins: Array<{ acr: string, amr: string[] }> = []
  /** The authorization details the user was shown and approved, one entry per consent. */
  consents: unknown[][] = []

  constructor () {
    this.server = createServer((req, res) => { void this.handle(req, res) })
  }

  async start (): Promise<this> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    await this.rotateKeys()
    return this
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  /** A new provider with a new signing key (kid) at the same URL: the old key is gone from its JWKS. */
  async rotateKeys (): Promise<string> {
    const kid = `key-${++this.generation}`
    const policy = interactionPolicy.base()
    policy.get('login').checks.add(new interactionPolicy.Check('acr_values_unmet', 'the session does not meet the requested acr_values', (ctx: { oidc: { params: { acr_values?: string }, session: { acr?: string } } }) => {
      const requested = ctx.oidc.params.acr_values?.split(' ')
      return requested !== undefined && !requested.includes(String(ctx.oidc.session.acr)) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT
    }))
    // PSD2: every payment is authenticated afresh (its own auth_time), whatever the session.
    policy.get('login').checks.add(new interactionPolicy.Check('payment_sca', 'a payment needs strong customer authentication', (ctx: { oidc: { params: { authorization_details?: string }, result?: { login?: unknown } } }) =>
      paymentsIn(ctx.oidc.params).length > 0 && ctx.oidc.result?.login === undefined ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT))
    this.provider = new Provider(this.issuer, {
      clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, redirect_uris: [CLIENT.redirect], grant_types: ['authorization_code'], response_types: ['code'], id_token_signed_response_alg: 'ES256', authorization_details_types: ['payment_initiation'] }],
      jwks: { keys: [await signingKey(kid)] },
      acrValues: [AAL1, AAL2, 'phr', 'phrh', 'http://idmanagement.gov/ns/assurance/aal/3'],
      claims: { openid: ['sub'] },
      scopes: ['openid', 'api'],
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`, policy },
      features: {
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } })
        },
        richAuthorizationRequests: {
          enabled: true,
          types: { payment_initiation: { validate: (_ctx: unknown, detail: Record<string, unknown>) => validatePayment(detail) } },
          // The code carries the requested details the user consented to (the grant holds every
          // consent of the session; a token is for this request's payments only).
          authorizationDetailsForGrantSource: (ctx: { oidc: { params: { authorization_details?: string }, grant?: { rar?: unknown[] } } }) => {
            const requested = JSON.parse(ctx.oidc.params.authorization_details ?? '[]') as unknown[]
            const consented = ctx.oidc.grant?.rar ?? []
            return requested.filter(d => consented.some(c => isDeepStrictEqual(c, d)))
          },
          authorizationDetailsForAccessToken: (_ctx: unknown, _token: unknown, source: { rar?: unknown[] } | undefined) => source?.rar,
          authorizationDetailsForIntrospection: (_ctx: unknown, token: { rar?: unknown[] }) => token.rar
        }
      },
      // RFC 9068 lets a JWT access token carry the authentication: acr, amr, auth_time.
      extraTokenClaims: (ctx: { oidc: { entities: { AuthorizationCode?: { acr?: string, amr?: string[], authTime?: number } } } }) => {
        const code = ctx.oidc.entities.AuthorizationCode
        return code ? { acr: code.acr, amr: code.amr, auth_time: code.authTime } : {}
      },
      pkce: { required: () => true },
      renderError: (ctx: { type: string, body: string }, out: { error: string, error_description?: string }) => { ctx.type = 'text/plain'; ctx.body = `${out.error}: ${out.error_description ?? ''}` },
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) })
    })
    return kid
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = this.provider!
    try {
      if (req.url?.startsWith('/interaction/')) {
        const details = await provider.interactionDetails(req, res)
        if (details.prompt.name === 'login') {
          // The test's user: a password, and a one-time code when stronger acr_values are asked for.
          const asked = typeof details.params.acr_values === 'string' ? String(details.params.acr_values).split(' ') : []
          const payment = paymentsIn(details.params).length > 0
          const login = asked.length > 0 || payment ? { acr: asked[0] ?? AAL2, amr: ['pwd', 'otp'] } : { acr: AAL1, amr: ['pwd'] }
          this.logins.push(login)
          // login_hint names the user (default user-1), so tests can keep users' histories apart.
          const accountId = typeof details.params.login_hint === 'string' ? details.params.login_hint : 'user-1'
          await provider.interactionFinished(req, res, { login: { accountId, acr: login.acr, amr: login.amr, remember: true } }, { mergeWithLastSubmission: false })
          return
        }
        const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id })
        grant.addOIDCScope('openid api')
        grant.addResourceScope(RESOURCE, 'api')
        // The user approves the payments shown (amount, payee): PSD2's dynamic linking starts here.
        const payments = paymentsIn(details.params)
        if (payments.length > 0) {
          for (const p of payments) grant.addRar(p)
          this.consents.push(payments)
        }
        await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true })
        return
      }
      provider.callback()(req, res)
    } catch (err) {
      res.statusCode = 500
      res.end(String((err as Error).message))
    }
  }
}

/** A browser with a cookie jar, following the authorization flow to the client's callback. */
export class Browser {
  private cookies = new Map<string, { name: string, value: string, path: string }>()

  async authorize (issuer: string, params: Record<string, string>): Promise<string> {
    const verifier = randomBytes(32).toString('base64url')
    const challenge = createHash('sha256').update(verifier).digest('base64url')
    const query = new URLSearchParams({ client_id: CLIENT.id, response_type: 'code', redirect_uri: CLIENT.redirect, scope: 'openid api', code_challenge: challenge, code_challenge_method: 'S256', resource: RESOURCE, ...params })
    let url = `${issuer}/auth?${query}`
    for (let hop = 0; hop < 20; hop++) {
      const path = new URL(url).pathname
      const cookie = [...this.cookies.values()].filter(c => path.startsWith(c.path)).map(c => `${c.name}=${c.value}`).join('; ')
      const res = await fetch(url, { redirect: 'manual', headers: { cookie } })
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attributes] = c.split(';').map(s => s.trim())
        const eq = pair!.indexOf('=')
        const name = pair!.slice(0, eq)
        const value = pair!.slice(eq + 1)
        const cookiePath = attributes.find(a => /^path=/i.test(a))?.slice(5) ?? '/'
        const expired = attributes.some(a => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()) || attributes.some(a => /^max-age=0$/i.test(a))
        if (expired || value === '') this.cookies.delete(`${name}|${cookiePath}`)
        else this.cookies.set(`${name}|${cookiePath}`, { name, value, path: cookiePath })
      }
      const location = res.headers.get('location')
      const text = await res.text()
      if (location === null) throw new Error(`authorization flow stopped at ${url}: HTTP ${res.status}: ${text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`)
      const next = new URL(location, url)
      if (next.href.startsWith(CLIENT.redirect)) {
        const code = next.searchParams.get('code')
        if (code === null) throw new Error(`no code: ${next.href}`)
        return this.exchange(issuer, code, verifier)
      }
      url = next.href
    }
    throw new Error('too many redirects')
  }

  /** An authorization for payments: RFC 9396 `authorization_details` (JSON) in the request. */
  async authorizePayments (issuer: string, details: unknown[], params: Record<string, string> = {}): Promise<string> {
    return this.authorize(issuer, { ...params, authorization_details: JSON.stringify(details) })
  }

  private async exchange (issuer: string, code: string, verifier: string): Promise<string> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CLIENT.redirect, code_verifier: verifier, resource: RESOURCE })
    })
    const body = await res.json() as { access_token?: string, error?: string, error_description?: string }
    if (body.access_token === undefined) throw new Error(`token endpoint: ${body.error}: ${body.error_description}`)
    return body.access_token
  }
}
