// The bridge's status shapes live with the other status shapes (src/status.ts), so http/ and cli/ can print them.
export type { BridgeDeadLetterStatus, BridgeStatus, BridgeTableStatus } from '../status.js'

/** Dead letters listed in the status (the oldest first); the table itself keeps all. */
export const MAX_DEAD_LETTERS_SHOWN = 20
