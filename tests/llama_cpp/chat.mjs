// A chat turn in llama.cpp (node-llama-cpp's prebuilt CPU binaries) with the chat template stored in the GGUF file,
// for tests/test_gguf_export.py and bench/laptop.py.
// usage: node chat.mjs MODEL.gguf MESSAGES_JSON N [THREADS] [ignore-eog|stop-at-eog] [THINKING_BUDGET]
//   MESSAGES_JSON: [{"role": "system"|"user"|"assistant", "content": "..."}]
//   prints {"prompt_ids": [...], "tokens": [...], "prompt_seconds": s, "decode_seconds": s}: the template rendered
//   by the runtime, then greedy tokens (ending at an end-of-generation token, not included, unless ignore-eog);
//   prompt_seconds runs to the first token, decode_seconds from it to the last. THINKING_BUDGET: after that many
//   generated tokens without "</think>", its tokens are fed in place of the next sampled ones and the answer goes
//   on (the two-step way to cap reasoning in any llama.cpp front end: stop at the budget, append </think>, resume)
import {getLlama, JinjaTemplateChatWrapper} from "node-llama-cpp";
const [modelPath, messagesJson, n, threads, ignoreEog, budgetArg] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath});
const template = model.fileInfo.metadata?.tokenizer?.chat_template;
if (!template) {
  console.error(`${modelPath}: no tokenizer.chat_template in the file`);
  process.exit(3);
}
const wrapper = new JinjaTemplateChatWrapper({template, tokenizer: model.tokenizer,
                                              convertUnsupportedSystemMessagesToUserMessages: false});
const kinds = {system: "system", user: "user", assistant: "model"};
const chatHistory = JSON.parse(messagesJson).map(({role, content}) =>
  role === "assistant" ? {type: "model", response: [content]} : {type: kinds[role], text: content});
chatHistory.push({type: "model", response: []});
const {contextText} = wrapper.generateContextState({chatHistory});
const promptIds = Array.from(contextText.tokenize(model.tokenizer));
const context = await model.createContext({contextSize: Math.max(512, promptIds.length + Number(n) + 8),
                                           threads: Number(threads ?? 1)});
const sequence = context.getSequence();
const tokens = [];
const budget = budgetArg === undefined ? null : Number(budgetArg);
const thinkEnd = Array.from(model.tokenize("</think>", true));
const closed = () => tokens.some((_, i) => thinkEnd.every((t, j) => tokens[i + j] === t));
const started = performance.now();
let first = null;
let pending = promptIds;  // what the sequence has not evaluated yet
if (budget === 0) {  // no reasoning at all: </think> opens the answer
  pending = [...promptIds, ...thinkEnd.slice(0, Number(n))];
  tokens.push(...thinkEnd.slice(0, Number(n)));
}
while (tokens.length < Number(n)) {
  let stopped = false, forcing = false;
  for await (const token of sequence.evaluate(pending, {temperature: 0})) {
    first ??= performance.now();
    if ((model.isEogToken(token) && ignoreEog !== "ignore-eog") || tokens.length >= Number(n)) {
      stopped = true;
      break;
    }
    tokens.push(token);
    if (budget !== null && tokens.length >= budget && !closed()) {
      forcing = true;
      break;
    }
  }
  if (stopped || !forcing) break;
  // the last sampled token is not evaluated yet: feed it, then </think> in place of the next sampled tokens
  const fed = sequence.contextTokens.length - promptIds.length;
  const room = Number(n) - tokens.length;
  const forced = thinkEnd.slice(0, room);
  pending = [...tokens.slice(fed), ...forced];
  tokens.push(...forced);
  if (tokens.length >= Number(n)) break;
}
const ended = performance.now();
console.log(JSON.stringify({prompt_ids: promptIds, tokens, prompt_seconds: (first - started) / 1000,
                            decode_seconds: (ended - first) / 1000}));
