// Varied test strings, the same on every run (a seeded generator): many scripts, CJK,
// emoji and ZWJ sequences, code, long whitespace runs, digits, contractions, the
// tokenizer's own special tokens inside text, and (as raw bytes) invalid UTF-8.
// Each string is returned as bytes (a Uint8Array), since invalid UTF-8 has no JS string.

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  "the", "The", "THE", "hello", "Hello", "world", "tokenizer", "Mixture", "of", "experts",
  "it's", "IT'S", "they'll", "We'RE", "I'd", "you've", "don't", "McDonald's", "HTTPServer", "camelCaseWord",
  "naïve", "café", "Zürich", "straße", "façade", "ÉCOLE", "Ångström", "smørrebrød", "Łódź", "İstanbul",
  "Привет", "мир", "МОСКВА", "Γειά", "σου", "ΚΌΣΜΕ", "שלום", "עולם", "مرحبا", "بالعالم",
  "नमस्ते", "दुनिया", "ক্ষমা", "தமிழ்", "ภาษาไทย", "สวัสดี", "ქართული", "Հայերեն", "አማርኛ", "ᠮᠣᠩᠭᠣᠯ",
  "你好", "世界", "中华人民共和国", "漢字", "東京", "こんにちは", "カタカナ", "ひらがなと漢字", "한국어", "안녕하세요",
  "Tiếng Việt", "Ελληνικά", "Ꭰꮳꮃ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ﬁnancial", "①②③", "Ⅻ", "½", "²³", "٣٤٥",
  "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "❤️", "🤖", "✨", "🧑🏿‍💻",
  "e\u0301", "n\u0303", "a\u0308\u0304", "\u0915\u094D\u0937", "Z\u0351\u036B\u0343", "\u200Bzero", "\u200D", "\u00A0", "\u3000", "\u2028",
];
const CODE = [
  "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
  "<div class=\"box\">&nbsp;</div>", "SELECT * FROM t WHERE id = 42;", "x = {'a': [1, 2, 3]}",
  "https://example.com/path?q=1&r=two#frag", "user@example.org", "#include <vector>", "a+=b; c-=d;",
  "if (a && !b || c) return -1;", "// comment\n/* block */", "$HOME/.config", "0x1F 0b1010 1e-9",
  "fn main() { println!(\"{}\", 1); }", "```python\nprint('hi')\n```", "\\n\\t\\\\", "...", "---", "!!!", "???",
];
const NUMBERS = ["0", "7", "42", "123", "1234", "12345", "3.14159", "1,000,000", "2024-06-01", "+49 30 1234567", "99.9%", "000123", "९८७", "١٢٣"];
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t \t", "\n\n\n\n", "        "];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

// A random code point from ranges assigned long ago (so Unicode versions agree).
function randomChar(rand) {
  const ranges = [
    [0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x5d0, 0x5ea], [0x600, 0x6ff],
    [0x900, 0x97f], [0xe00, 0xe5b], [0x1100, 0x11ff], [0x2000, 0x206f], [0x20a0, 0x20bf], [0x2100, 0x214f],
    [0x2190, 0x22ff], [0x3040, 0x30ff], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff01, 0xff5e], [0x1f300, 0x1f64f],
    [0x1d400, 0x1d4ff], [0x20000, 0x2a6d6],
  ];
  const [lo, hi] = pick(rand, ranges);
  return String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
}

const encoder = new TextEncoder();

function concatBytes(parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Byte sequences that are not UTF-8: stray continuation bytes, cut sequences, overlongs,
// surrogates, bytes that never occur.
const INVALID = [[0x80], [0xbf], [0xc3], [0xe4, 0xbd], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xfe, 0xfe], [0xf8, 0x88, 0x80, 0x80, 0x80]];

// count strings for a tokenizer whose special tokens are `specials`; `avoid` lists code
// points the reference is known to treat differently from the Rust original (see the
// generator), which are left out.
export function makeStrings(count, specials, { invalidUtf8 = true, avoid = [] } = {}) {
  const rand = mulberry32(0x5eed);
  const out = [];
  const fixed = ["", " ", "a", "\n", "   leading", "trailing   ", "  both  ", "a  b   c    d", " ".repeat(300), "\n".repeat(50),
    "\t".repeat(40) + "x", "x" + " ".repeat(1000) + "y", "1".repeat(100), "ab".repeat(200), "😀".repeat(30), "中".repeat(100),
    "A".repeat(500), "'s'S'll'LL", "!!!???...", ...specials, ...specials.map((s) => `x${s}y`), specials.join(""), specials.join(" ")];
  for (const s of fixed) out.push(encoder.encode(s));
  while (out.length < count) {
    const parts = [];
    const n = 1 + Math.floor(rand() * 12);
    for (let k = 0; k < n; ++k) {
      const r = rand();
      let piece;
      if (r < 0.4) piece = pick(rand, WORDS);
      else if (r < 0.5) piece = pick(rand, CODE);
      else if (r < 0.6) piece = pick(rand, NUMBERS);
      else if (r < 0.7) piece = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => randomChar(rand)).join("");
      else if (r < 0.75 && specials.length) piece = pick(rand, specials);
      else if (r < 0.8) piece = " ".repeat(1 + Math.floor(rand() * 40));
      else piece = pick(rand, SPACES);
      parts.push(encoder.encode(piece));
      if (rand() < 0.5) parts.push(encoder.encode(rand() < 0.8 ? " " : pick(rand, SPACES)));
      if (invalidUtf8 && rand() < 0.03) parts.push(Uint8Array.from(pick(rand, INVALID)));
    }
    const bytes = concatBytes(parts);
    const text = new TextDecoder().decode(bytes);
    if ([...text].some((c) => avoid.includes(c.codePointAt(0)))) continue;
    out.push(bytes);
  }
  return out;
}
