/** Which gathered facts each trigger needs: the service fetches only these. */
import type { SignalNeeds, Trigger } from './model.js'

export function needsOf (trigger: Trigger): SignalNeeds {
  switch (trigger.kind) {
    case 'always': return { history: false, geo: false, ipLists: false }
    case 'newDevice':
    case 'firstAccess': return { history: true, geo: false, ipLists: false }
    case 'newCountry':
    case 'impossibleTravel': return { history: true, geo: true, ipLists: false }
    case 'riskScore': return { history: true, geo: true, ipLists: true }
    case 'ipList': return { history: false, geo: false, ipLists: true }
    case 'condition':
      return conditionNeeds(trigger.program.reads)
  }
}

/** What a CEL condition needs, from the variables and `signals.*` members it reads. */
export function conditionNeeds (reads: ReadonlySet<string>): SignalNeeds {
  const sig = readsSignal(reads)
  return {
    history: sig('newDevice') || sig('newCountry') || sig('impossibleTravel') || sig('hasHistory') || sig('travel') || sig('riskScore'),
    geo: reads.has('geo') || sig('locationKnown') || sig('newCountry') || sig('impossibleTravel') || sig('travel') || sig('riskScore'),
    ipLists: sig('ipLists') || sig('riskScore')
  }
}

/** `sig(name)`: does the expression read `signals.<name>` (or the whole `signals` object)? */
export function readsSignal (reads: ReadonlySet<string>): (name: string) => boolean {
  const whole = reads.has('signals') && ![...reads].some(x => x.startsWith('signals.'))
  return name => whole || reads.has(`signals.${name}`)
}
