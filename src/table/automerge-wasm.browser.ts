// Port: Automerge's WASM in a browser, from its base64 build (no bundler WASM support needed).
// This module is only reached through engines.browser.ts's dynamic import, so a page with Yjs
// or columns tables only never downloads it.
import { automergeWasmBase64 } from '@automerge/automerge/automerge.wasm.base64'
import { initializeBase64Wasm, isWasmInitialized } from '@automerge/automerge/slim'

if (!isWasmInitialized()) await initializeBase64Wasm(automergeWasmBase64)
