/**
 * How busy the machine was during a measurement, and how much of that was not the benchmark:
 * /proc/stat (all CPUs) against /proc/<pid>/stat of the benchmark's own processes (this one,
 * the servers, the redis-servers). Other engineers' test runs show up as "other" CPU.
 */
import { readFileSync } from 'node:fs'

const tracked = new Set<number>([process.pid])
export const track = (pid: number | undefined): void => { if (pid !== undefined) tracked.add(pid) }

const HZ = 100 // USER_HZ

function machineJiffies (): { busy: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  return { busy: total - idle }
}

function ownJiffies (): number {
  let sum = 0
  for (const pid of tracked) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      sum += Number(fields[11]) + Number(fields[12]) // utime, stime
    } catch {
      tracked.delete(pid)
    }
  }
  return sum
}

export interface CpuShare { machine: number, ours: number, other: number }

/** Starts a window; the returned function ends it: CPU in cores (1 = one core busy all along). */
export function cpuWindow (): () => CpuShare {
  const started = performance.now()
  const m0 = machineJiffies().busy
  const o0 = ownJiffies()
  return () => {
    const seconds = (performance.now() - started) / 1000
    const machine = (machineJiffies().busy - m0) / HZ / seconds
    const ours = (ownJiffies() - o0) / HZ / seconds
    return { machine, ours, other: Math.max(0, machine - ours) }
  }
}
