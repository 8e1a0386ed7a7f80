// Every file in test/http, in one process (see test/helpers/group.ts).
import { runFolder } from '../helpers/group.js'
await runFolder(new URL('../http/', import.meta.url))
