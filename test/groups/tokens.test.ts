// Every file in test/tokens, in one process (see test/helpers/group.ts).
import { runFolder } from '../helpers/group.js'
await runFolder(new URL('../tokens/', import.meta.url))
