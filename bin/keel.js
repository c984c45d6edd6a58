#!/usr/bin/env node
// The keel command. The CLI is compiled to dist/ by `npm install` (the prepare script).
import('../dist/src/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('keel: the compiled CLI is missing (dist/). Run `npm install` or `npm run build` in the keel folder first.');
  } else {
    console.error(error);
  }
  process.exit(2);
});
