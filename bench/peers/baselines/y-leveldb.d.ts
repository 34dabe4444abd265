/* y-leveldb 0.2 ships types at dist/src/y-leveldb.d.ts but its package.json "exports" hides them under NodeNext resolution; the part used here. */
declare module 'y-leveldb' {
  import type * as Y from 'yjs'
  export class LeveldbPersistence {
    constructor(location: string, options?: { Level?: unknown; levelOptions?: object })
    getYDoc(docName: string): Promise<Y.Doc>
    storeUpdate(docName: string, update: Uint8Array): Promise<number>
    flushDocument(docName: string): Promise<void>
    destroy(): Promise<void>
  }
}
