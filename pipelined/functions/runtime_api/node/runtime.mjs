// pipelined's Node.js runtime client: the client side of the Lambda Runtime API (2018-06-01).
//
// Loads the handler named by _HANDLER from LAMBDA_TASK_ROOT the way Lambda's Node.js runtime does
// (CommonJS .js/.cjs, ES modules .mjs or "type": "module"), then loops: GET the next invocation, call
// the handler (async, or callback style), POST its response or error. console output is written as
// Lambda's text log lines, tagged with the request id. No dependencies beyond Node.js itself.

import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import util from "node:util";

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const [HOST, PORT] = API.split(":");
const BASE = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const require = createRequire(path.join(process.env.LAMBDA_TASK_ROOT || process.cwd(), "index.js"));

// --- logging: Lambda's text format, "time\trequestId\tLEVEL\tmessage", newlines as carriage returns ---

let currentRequestId;

function writeLine(level, args) {
  const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
  process.stdout.write(line.replace(/\n/g, "\r") + "\n");
}

console.log = (...args) => writeLine("INFO", args);
console.info = (...args) => writeLine("INFO", args);
console.warn = (...args) => writeLine("WARN", args);
console.error = (...args) => writeLine("ERROR", args);
console.debug = (...args) => writeLine("DEBUG", args);
console.trace = (...args) => {
  const stack = new Error().stack.split("\n").slice(2).join("\n");
  writeLine("TRACE", [util.format(...args) + "\n" + stack]);
};

// --- errors: Lambda's error object ---------------------------------------------------------------

class RuntimeError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = `Runtime.${kind}`;
  }
}

function errorObject(error) {
  try {
    if (util.types.isNativeError(error) || (error && typeof error.stack === "string" && error.name)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split("\n") };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage: "callback called with Error argument, but its message, name or stack could not be read",
    };
  }
}

// --- the Runtime API ---------------------------------------------------------------------------------

function call(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: HOST, port: PORT, method, path: BASE + urlPath, agent, headers },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

async function post(urlPath, payload, headers = {}) {
  const response = await call("POST", urlPath, payload, { "Content-Type": "application/json", ...headers });
  if (response.status !== 202) {
    writeLine("ERROR", [`Runtime API ${urlPath}: ${response.status} ${response.body.toString()}`]);
  }
}

function postError(urlPath, error) {
  const body = errorObject(error);
  writeLine("ERROR", [`Invoke Error \t${JSON.stringify(body)}`]);
  return post(urlPath, JSON.stringify(body), { "Lambda-Runtime-Function-Error-Type": body.errorType });
}

async function initFailed(error) {
  const body = errorObject(error);
  writeLine("ERROR", [`Uncaught Exception \t${JSON.stringify(body)}`]);
  try {
    await post("/init/error", JSON.stringify(body), { "Lambda-Runtime-Function-Error-Type": body.errorType });
  } finally {
    process.exit(129);
  }
}

// --- loading the handler, as Lambda's Node.js runtime resolves `dir/file.export.nested` ---------------

function typeIsModule(folder) {
  for (;;) {
    if (folder.endsWith(`${path.sep}node_modules`)) return false;
    const manifest = path.join(folder, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, "utf8")).type === "module";
      } catch {
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

async function loadModule(root, moduleRoot, name) {
  const base = path.resolve(root, moduleRoot, name);
  const exists = (ext) => fs.existsSync(base + ext);
  if (exists("")) return require(base);
  const esm = typeIsModule(path.dirname(base));
  if (!esm && exists(".js")) return require(base + ".js");
  if (esm && exists(".js")) return import(pathToFileURL(base + ".js").href);
  if (exists(".mjs")) return import(pathToFileURL(base + ".mjs").href);
  if (exists(".cjs")) return require(base + ".cjs");
  return require(require.resolve(name, { paths: [root, path.resolve(root, moduleRoot)] }));
}

async function loadHandler(root, handlerName) {
  if (handlerName.includes("..")) {
    throw new RuntimeError("MalformedHandlerName", `'${handlerName}' is not a valid handler name.`);
  }
  const file = path.basename(handlerName);
  const moduleRoot = handlerName.slice(0, handlerName.length - file.length);
  const match = file.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new RuntimeError("MalformedHandlerName", "Bad handler");
  const [, name, exportPath] = match;
  let loaded;
  try {
    loaded = await loadModule(root, moduleRoot, name);
  } catch (error) {
    if (error instanceof SyntaxError) throw new RuntimeError("UserCodeSyntaxError", String(error));
    if (error && error.code === "MODULE_NOT_FOUND") throw new RuntimeError("ImportModuleError", String(error));
    throw error;
  }
  const handler = exportPath.split(".").reduce((object, key) => object && object[key], loaded);
  if (!handler) throw new RuntimeError("HandlerNotFound", `${handlerName} is undefined or not exported`);
  if (typeof handler !== "function") throw new RuntimeError("HandlerNotFound", `${handlerName} is not a function`);
  return handler;
}

// --- one invocation --------------------------------------------------------------------------------

// What runs when the event loop drains: a callback's result waiting for it, or the default outcome.
let onEmptyLoop = null;
process.on("beforeExit", () => {
  const run = onEmptyLoop;
  onEmptyLoop = null;
  if (run) run();
});

function parseHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function invokeOnce(handler, event, headers) {
  return new Promise((resolve) => {
    let finished = false;
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      onEmptyLoop = null;
      resolve(outcome);
    };
    const succeed = (value) => finish({ value });
    const fail = (error) => finish({ error: error === undefined || error === null ? "handled" : error });
    let waitsForEmptyLoop = true;
    const callback = (error, value) => {
      if (error !== undefined && error !== null) return fail(error);
      if (!waitsForEmptyLoop) return succeed(value);
      onEmptyLoop = () => setImmediate(() => succeed(value));
    };
    const deadline = Number(headers["lambda-runtime-deadline-ms"]);
    const env = process.env;
    const context = {
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      awsRequestId: headers["lambda-runtime-aws-request-id"],
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      identity: parseHeader(headers["lambda-runtime-cognito-identity"]),
      clientContext: parseHeader(headers["lambda-runtime-client-context"]),
      getRemainingTimeInMillis: () => deadline - Date.now(),
      get callbackWaitsForEmptyEventLoop() {
        return waitsForEmptyLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitsForEmptyLoop = value;
      },
      succeed,
      fail,
      done: (error, value) => (error !== undefined && error !== null ? fail(error) : succeed(value)),
    };
    // Neither a callback nor a settled promise by the time nothing is left to run: Lambda's outcome.
    const isAsync = handler.constructor && handler.constructor.name === "AsyncFunction";
    onEmptyLoop = () =>
      isAsync
        ? fail(new RuntimeError("NodeJsExit", "Runtime exited without providing a reason: the handler's promise never settled"))
        : succeed(null);
    try {
      const result = handler(event, context, callback);
      if (result && typeof result.then === "function") result.then(succeed, fail);
    } catch (error) {
      callback(error);
    }
  });
}

// --- the loop ------------------------------------------------------------------------------------

let errorPath = null; // where an uncaught error goes: the current invocation's error path, or init

process.on("uncaughtException", (error) => {
  if (errorPath === null) return initFailed(error);
  postError(errorPath, error).finally(() => process.exit(129));
});
process.on("unhandledRejection", (reason) => {
  const error = new RuntimeError("UnhandledPromiseRejection", reason && reason.stack ? reason.stack : String(reason));
  if (errorPath === null) return initFailed(error);
  postError(errorPath, error).finally(() => process.exit(128));
});

async function main() {
  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(), process.env._HANDLER || "");
  } catch (error) {
    return initFailed(error);
  }
  for (;;) {
    const next = await call("GET", "/invocation/next");
    if (next.status !== 200) throw new Error(`Runtime API /invocation/next: ${next.status} ${next.body}`);
    const requestId = next.headers["lambda-runtime-aws-request-id"];
    currentRequestId = requestId;
    const trace = next.headers["lambda-runtime-trace-id"];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    errorPath = `/invocation/${requestId}/error`;
    let outcome;
    try {
      outcome = await invokeOnce(handler, JSON.parse(next.body.toString("utf8")), next.headers);
    } catch (error) {
      outcome = { error };
    }
    if ("error" in outcome) {
      await postError(errorPath, outcome.error);
    } else {
      let body;
      try {
        body = JSON.stringify(outcome.value === undefined ? null : outcome.value);
      } catch (error) {
        await postError(errorPath, new RuntimeError("MarshalError", `Unable to stringify response body: ${error.message}`));
        continue;
      }
      await post(`/invocation/${requestId}/response`, body);
    }
  }
}

main().catch((error) => {
  // The Runtime API itself failed (pipelined stopped the worker): nothing left to report to.
  process.stderr.write(`pipelined runtime client: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
