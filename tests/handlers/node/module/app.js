// A .js file that is an ES module because package.json says "type": "module".
export async function handler(event) {
  return { kind: typeof require === "undefined" ? "module" : "commonjs", event };
}
