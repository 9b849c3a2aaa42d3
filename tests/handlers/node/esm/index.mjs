// An ES module (.mjs) with top-level await: init finishes before the first invocation.
const initialisedAt = await new Promise((resolve) => setTimeout(() => resolve(Date.now()), 10));
let invocations = 0;

export const handler = async (event, context) => {
  invocations += 1;
  return {
    kind: "esm",
    event,
    invocations,
    initialisedAt,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memoryLimitInMB: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
  };
};
