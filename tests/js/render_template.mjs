// Renders Jinja templates with the reference JavaScript implementation, @huggingface/jinja.
//
//   {"template": "...", "context": {...}} on stdin: writes the rendered text to stdout, byte for
//   byte; on a template error prints the message to stderr and exits 1.
//   {"batch": [{"template": ..., "context": ...}, ...]} on stdin: writes a JSON array with one
//   {"output": text} or {"error": message} per item (one node start for many renders).
import { Template } from "@huggingface/jinja";

function renderOne(item) {
  if (typeof item.template !== "string") throw new Error('input needs a string field "template"');
  return new Template(item.template).render(item.context ?? {});
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

if (Array.isArray(input.batch)) {
  const results = input.batch.map((item) => {
    try {
      return { output: renderOne(item) };
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
} else {
  try {
    process.stdout.write(renderOne(input));
  } catch (err) {
    process.stderr.write(`render_template.mjs: ${err && err.message ? err.message : err}\n`);
    process.exit(1);
  }
}
