// Renders a Jinja template with the reference JavaScript implementation, @huggingface/jinja.
// Reads {"template": "...", "context": {...}} as JSON on stdin and writes the rendered text to
// stdout, byte for byte. On a template error it prints the message to stderr and exits 1.
import { Template } from "@huggingface/jinja";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
if (typeof input.template !== "string") {
  process.stderr.write("render_template.mjs: input needs a string field \"template\"\n");
  process.exit(2);
}
try {
  const rendered = new Template(input.template).render(input.context ?? {});
  process.stdout.write(rendered);
} catch (err) {
  process.stderr.write(`render_template.mjs: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}
