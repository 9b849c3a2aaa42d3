// SQS partial batch response: every message whose body contains "bad" is reported failed.
import fs from "node:fs";

export const handler = async (event) => {
  fs.appendFileSync(process.env.RECORD_FILE, JSON.stringify(event) + "\n");
  const failed = event.Records.filter((record) => record.body.includes("bad"));
  return { batchItemFailures: failed.map((record) => ({ itemIdentifier: record.messageId })) };
};
