// A chat turn in llama.cpp (node-llama-cpp's prebuilt CPU binaries) with the chat template stored in the GGUF file,
// for tests/test_gguf_export.py and bench/laptop.py.
// usage: node chat.mjs MODEL.gguf MESSAGES_JSON N [THREADS] [ignore-eog]
//   MESSAGES_JSON: [{"role": "system"|"user"|"assistant", "content": "..."}]
//   prints {"prompt_ids": [...], "tokens": [...], "prompt_seconds": s, "decode_seconds": s}: the template rendered
//   by the runtime, then greedy tokens (ending at an end-of-generation token, not included, unless ignore-eog);
//   prompt_seconds runs to the first token, decode_seconds from it to the last
import {getLlama, JinjaTemplateChatWrapper} from "node-llama-cpp";
const [modelPath, messagesJson, n, threads, ignoreEog] = process.argv.slice(2);
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
const started = performance.now();
let first = null;
for await (const token of sequence.evaluate(promptIds, {temperature: 0})) {
  first ??= performance.now();
  if ((model.isEogToken(token) && ignoreEog !== "ignore-eog") || tokens.length >= Number(n)) break;
  tokens.push(token);
}
const ended = performance.now();
console.log(JSON.stringify({prompt_ids: promptIds, tokens, prompt_seconds: (first - started) / 1000,
                            decode_seconds: (ended - first) / 1000}));
