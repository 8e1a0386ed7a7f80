// Every file in test/unit, in one process (see test/helpers/group.ts).
import { runFolder } from '../helpers/group.js'
await runFolder(new URL('../unit/', import.meta.url))
