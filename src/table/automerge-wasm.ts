// Port: Automerge's WASM. In Node the full entry loads it synchronously when imported; the
// engine itself uses '@automerge/automerge/slim', the same module instance. The browser build
// replaces this module with automerge-wasm.browser.ts.
import '@automerge/automerge'
