// CommonJS handlers for pipelined's Node.js runtime tests, one behaviour each.
const fs = require("fs");

exports.callback = function (event, context, callback) {
  setTimeout(() => callback(null, { style: "callback", value: event.value }), 5);
};

// The callback fires first, but the response waits for the event loop to drain (Lambda's default).
exports.waitsForEmptyLoop = function (event, context, callback) {
  const order = [];
  callback(null, order);
  setTimeout(() => order.push("timer ran before the response"), 50);
};

exports.callbackError = function (event, context, callback) {
  callback(new TypeError("bad input"));
};

exports.thrown = async function () {
  throw new Error("boom");
};

exports.remaining = async function (event, context) {
  const first = context.getRemainingTimeInMillis();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { first, second: context.getRemainingTimeInMillis() };
};

exports.sleep = async function () {
  console.log("going to sleep");
  await new Promise((resolve) => setTimeout(resolve, 600000));
};

exports.environment = async function () {
  console.log("line one\nline two");
  console.error("an error line");
  return { env: process.env, cwd: process.cwd(), pid: process.pid };
};

exports.crash = async function () {
  process.exit(3);
};

exports.hog = async function () {
  const kept = [];
  for (;;) {
    kept.push(Buffer.alloc(16 * 1024 * 1024, 1));
    await new Promise((resolve) => setImmediate(resolve));
  }
};

exports.record = async function (event, context) {
  fs.appendFileSync(process.env.RECORD_FILE, JSON.stringify({ event, requestId: context.awsRequestId }) + "\n");
  if (event && event.fail) throw new Error("asked to fail");
  return "recorded";
};
