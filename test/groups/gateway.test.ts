// Every file in test/gateway, in one process (see test/helpers/group.ts).
import { runFolder } from '../helpers/group.js'
await runFolder(new URL('../gateway/', import.meta.url))
