import '../src/polyfill.js'
