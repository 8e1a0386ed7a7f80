// Every file in test/cli, in one process (see test/helpers/group.ts).
import { runFolder } from '../helpers/group.js'
await runFolder(new URL('../cli/', import.meta.url))
