/**
 * `context.transaction` (docs/psd2.md): the schema has checked its shape; this checks what a
 * schema cannot (the IBAN's check digits) and computes what the engine and store compare.
 */
import { badRequest } from '../errors.js'
import { sha256, subjectSalt } from '../ids.js'
import { canonicalAmount, ibanValid, normalizeIban, normalizeName, parseAmount } from '../engine/psd2.js'
import type { Transaction } from '../engine/model.js'
import type { DecideBody } from './schemas.js'

type TransactionBody = NonNullable<NonNullable<DecideBody['context']>['transaction']>

export function parseTransaction (body: TransactionBody, tenant: string | undefined, subject: string): Transaction {
  const scaled = parseAmount(body.amount)
  if (scaled === undefined) throw badRequest('context.transaction.amount', 'must be a decimal string with at most 11 digits and 4 decimals')
  const iban = normalizeIban(body.payee.iban)
  if (!ibanValid(iban)) throw badRequest('context.transaction.payee.iban', 'not a valid IBAN (its length, format or check digits are wrong for its country)')
  const name = normalizeName(body.payee.name)
  if (name === '') throw badRequest('context.transaction.payee.name', 'must not be blank')
  return {
    amount: body.amount,
    scaled,
    currency: body.currency,
    payee: { name: body.payee.name, iban },
    trustPayee: body.trustPayee === true,
    hash: sha256(`${canonicalAmount(scaled)}\u0000${body.currency}\u0000${name}\u0000${iban}`, 'base64url').slice(0, 32),
    payeeId: sha256(`${subjectSalt(tenant, subject)}\u0000${iban}`, 'base64url').slice(0, 22)
  }
}
