// Verifies one importwatch webhook delivery with the Standard Webhooks
// reference library (npm "standardwebhooks").
//
//   node verify.js CASE.json
//
// CASE.json: {"secret": "whsec_…", "headers": {"webhook-id": …,
// "webhook-timestamp": …, "webhook-signature": …}, "body": "<raw body>"}.
// Exit 0: the signature verifies; 1: it does not; 2: usage or setup error.
"use strict";
const fs = require("fs");

let Webhook;
try {
  ({ Webhook } = require("standardwebhooks"));
} catch (e) {
  console.error("standardwebhooks is not installed: npm install --prefix tests/node");
  process.exit(2);
}

if (process.argv.length !== 3) {
  console.error("usage: node verify.js CASE.json");
  process.exit(2);
}

let input;
try {
  input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
} catch (e) {
  console.error(`cannot read ${process.argv[2]}: ${e.message}`);
  process.exit(2);
}

try {
  new Webhook(input.secret).verify(input.body, input.headers);
  console.log("verified");
  process.exit(0);
} catch (e) {
  console.error(`verification failed: ${e.message}`);
  process.exit(1);
}
