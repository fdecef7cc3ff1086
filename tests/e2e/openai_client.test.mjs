// The official OpenAI client against `parallax serve` (started by run.sh): response shapes,
// streaming, logprobs, usage, n, seeds, and errors surfacing as the client's error classes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.PARALLAX_BASE_URL;
const apiKey = process.env.PARALLAX_API_KEY;
const model = process.env.PARALLAX_MODEL;
assert.ok(baseURL && apiKey && model, 'run through tests/e2e/run.sh');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hello, how are you today?' },
];
// Greedy and past end-of-generation tokens, so every run produces exactly max_tokens tokens.
const greedy = { temperature: 0, ignore_eos: true };

test('models.list names the served model', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [model]);
});

test('chat completion has the OpenAI shape and usage', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 8, ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].index, 0);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streamed chat carries the same text as the whole response', async () => {
  const whole = await client.chat.completions.create({ model, messages, max_tokens: 12, ...greedy });
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 12, ...greedy, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, whole.usage);
});

test('text completion, whole and streamed', async () => {
  const params = { model, prompt: 'The quick brown fox', max_tokens: 10, ...greedy };
  const whole = await client.completions.create(params);
  assert.equal(whole.object, 'text_completion');
  assert.match(whole.id, /^cmpl-/);
  assert.equal(typeof whole.choices[0].text, 'string');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 10);

  let text = '';
  for await (const chunk of await client.completions.create({ ...params, stream: true })) {
    for (const choice of chunk.choices) text += choice.text;
  }
  assert.equal(text, whole.choices[0].text);
});

test('chat logprobs list every token with its top alternatives', async () => {
  const r = await client.chat.completions.create({
    model, messages, max_tokens: 6, ...greedy, logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 6);
  for (const entry of content) {
    assert.equal(typeof entry.token, 'string');
    assert.ok(entry.logprob <= 0);
    assert.ok(Array.isArray(entry.bytes));
    assert.equal(entry.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(entry.top_logprobs[0].logprob, entry.logprob);
  }
});

test('completion logprobs use the legacy format', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, ...greedy, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs.length, 5);
  assert.equal(lp.top_logprobs.length, 5);
  assert.equal(lp.text_offset[0], 0);
  for (const top of lp.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
});

test('n = 2 returns two indexed choices', async () => {
  const r = await client.chat.completions.create({
    model, messages, max_tokens: 6, n: 2, temperature: 1, seed: 5, ignore_eos: true,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.usage.completion_tokens, 12);
});

test('the same seed reproduces a sampled completion', async () => {
  const params = { model, messages, max_tokens: 16, temperature: 1, seed: 1234, ignore_eos: true };
  const a = await client.chat.completions.create(params);
  const b = await client.chat.completions.create(params);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const c = await client.chat.completions.create({ ...params, seed: 4321 });
  assert.notEqual(c.choices[0].message.content, a.choices[0].message.content);
});

test('stop strings end the text before them', async () => {
  const full = await client.completions.create({ model, prompt: 'Hello', max_tokens: 24, ...greedy });
  const text = full.choices[0].text;
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
  const cut = await client.completions.create({ model, prompt: 'Hello', max_tokens: 24, ...greedy, stop: [stop] });
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('a wrong API key is an AuthenticationError (401)', async () => {
  const bad = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model, messages, max_tokens: 1 }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.status, 401);
    return true;
  });
});

test('an out-of-range parameter is a BadRequestError (400)', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages, temperature: 5 }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.param, 'temperature');
    return true;
  });
});

test('an unknown model is a NotFoundError (404)', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.status, 404);
    return true;
  });
});

test('a client that abandons a stream leaves the server serving', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages, max_tokens: 400, ...greedy, stream: true },
    { signal: controller.signal },
  );
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.choices[0]?.delta?.content) {
      controller.abort();
      break;
    }
  }
  assert.ok(chunks >= 1);
  const r = await client.chat.completions.create({ model, messages, max_tokens: 2, ...greedy });
  assert.equal(r.usage.completion_tokens, 2);
});

// Streams the text of one greedy chat completion.
async function streamedText(content) {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content }], max_tokens: 24, ...greedy, stream: true,
  });
  let text = '';
  for await (const chunk of stream) {
    for (const choice of chunk.choices) text += choice.delta.content ?? '';
  }
  return text;
}

test('16 concurrent streams give exactly what each gives alone', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => `Prompt number ${i}: ${'word '.repeat(i * 3)}end`);
  const alone = [];
  for (const p of prompts) alone.push(await streamedText(p));
  const together = await Promise.all(prompts.map((p) => streamedText(p)));
  assert.deepEqual(together, alone);
});
