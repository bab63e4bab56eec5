// The official openai client against a running `moestream serve`: models, chat and
// completions (streamed and not), a tool-call round trip, errors as the client's typed
// exceptions. Usage: node openai_client.mjs BASE_URL MODEL. Exits 1 naming the first failure.
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });

function check(condition, what) {
  if (!condition) {
    console.error(`openai_client.mjs: FAILED: ${what}`);
    process.exit(1);
  }
}

const models = await client.models.list();
check(models.data.some((m) => m.id === model), `models.list names ${model}`);

const chat = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2,
});
check(chat.object === 'chat.completion', 'chat object');
check(chat.choices[0].message.role === 'assistant', 'assistant message');
check(['stop', 'length'].includes(chat.choices[0].finish_reason), `finish_reason ${chat.choices[0].finish_reason}`);
check(chat.usage.completion_tokens >= 1 && chat.usage.completion_tokens <= 8, 'usage.completion_tokens within max_tokens');
check(chat.choices[0].logprobs.content.length === chat.usage.completion_tokens, 'one logprob per token');
check(chat.choices[0].logprobs.content[0].top_logprobs.length === 2, 'top_logprobs');

const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, stream: true,
  stream_options: { include_usage: true },
});
let finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length && chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
}
check(chunks >= 2 && finish !== null, 'streamed chat ends with a finish_reason');
check(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, 'streamed usage');

const completion = await client.completions.create({ model, prompt: 'Once upon', max_tokens: 5, seed: 7 });
check(completion.object === 'text_completion' && typeof completion.choices[0].text === 'string', 'completion');
const again = await client.completions.create({ model, prompt: 'Once upon', max_tokens: 5, seed: 7 });
check(again.choices[0].text === completion.choices[0].text, 'same seed, same text');
let text = '';
for await (const chunk of await client.completions.create({ model, prompt: 'Once upon', max_tokens: 5, seed: 7, stream: true }))
  text += chunk.choices[0]?.text ?? '';
check(text === completion.choices[0].text, 'streamed completion equals the non-streamed one');

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const roundTrip = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
    function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
];
const plain = await client.chat.completions.create({ model, messages: roundTrip, max_tokens: 1 });
const withTools = await client.chat.completions.create({ model, messages: roundTrip, tools, max_tokens: 1 });
check(withTools.usage.prompt_tokens > plain.usage.prompt_tokens, 'the tools reach the template (a longer prompt)');

try {
  await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
  check(false, 'an unknown model is refused');
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.code === 'model_not_found', `unknown model: ${e}`);
}
try {
  await client.chat.completions.create({ model, messages: [] });
  check(false, 'empty messages are refused');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === 'messages', `empty messages: ${e}`);
}
console.log('openai_client.mjs: all checks passed');
