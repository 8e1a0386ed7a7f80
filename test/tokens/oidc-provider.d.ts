// oidc-provider ships no types; the tests use a small part of it, typed loosely here.
declare module 'oidc-provider' {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  export class Provider {
    constructor (issuer: string, configuration: Record<string, any>)
    callback (): (req: any, res: any) => void
    interactionDetails (req: any, res: any): Promise<any>
    interactionFinished (req: any, res: any, result: Record<string, any>, options?: Record<string, any>): Promise<void>
    Grant: any
    on (event: string, listener: (...args: any[]) => void): void
  }
  export const interactionPolicy: any
  export const errors: any
  export default Provider
}
