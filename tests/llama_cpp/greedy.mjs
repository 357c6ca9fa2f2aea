// Greedy tokens of a GGUF file in llama.cpp (node-llama-cpp's prebuilt CPU binaries), for tests/test_gguf_export.py.
// usage: node greedy.mjs MODEL.gguf PROMPT_IDS_JSON N  -> prints {"tokens": [...]} (ends early at an end-of-generation token)
import {getLlama} from "node-llama-cpp";
const [model_path, idsJson, n] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: model_path});
const context = await model.createContext({contextSize: 512, threads: 1});
const seq = context.getSequence();
const out = [];
for await (const token of seq.evaluate(JSON.parse(idsJson), {temperature: 0})) {
  out.push(token);
  if (out.length >= Number(n)) break;
}
console.log(JSON.stringify({tokens: out}));
