// Syntax highlighting for every language coderoom offers, from @codemirror/legacy-modes.
// Each mode is its own chunk, loaded when a session in that language opens, so the first
// load carries none of them. Languages without a fitting mode get plain text.
import { StreamLanguage, type StreamParser } from "@codemirror/language";
import type { Extension } from "@codemirror/state";

type Loader = () => Promise<StreamParser<unknown>>;

const clike = (name: string): Loader => async () => (await import("@codemirror/legacy-modes/mode/clike") as unknown as Record<string, StreamParser<unknown>>)[name];

const LOADERS: Record<string, Loader> = {
  python: async () => (await import("@codemirror/legacy-modes/mode/python")).python,
  javascript: async () => (await import("@codemirror/legacy-modes/mode/javascript")).javascript,
  typescript: async () => (await import("@codemirror/legacy-modes/mode/javascript")).typescript,
  c: clike("c"),
  cpp: clike("cpp"),
  csharp: clike("csharp"),
  java: clike("java"),
  kotlin: clike("kotlin"),
  scala: clike("scala"),
  objectivec: clike("objectiveC"),
  vala: clike("csharp"),
  bash: async () => (await import("@codemirror/legacy-modes/mode/shell")).shell,
  assembly: async () => (await import("@codemirror/legacy-modes/mode/gas")).gas,
  clojure: async () => (await import("@codemirror/legacy-modes/mode/clojure")).clojure,
  cobol: async () => (await import("@codemirror/legacy-modes/mode/cobol")).cobol,
  commonlisp: async () => (await import("@codemirror/legacy-modes/mode/commonlisp")).commonLisp,
  d: async () => (await import("@codemirror/legacy-modes/mode/d")).d,
  elixir: async () => (await import("@codemirror/legacy-modes/mode/ruby")).ruby,
  erlang: async () => (await import("@codemirror/legacy-modes/mode/erlang")).erlang,
  fortran: async () => (await import("@codemirror/legacy-modes/mode/fortran")).fortran,
  go: async () => (await import("@codemirror/legacy-modes/mode/go")).go,
  groovy: async () => (await import("@codemirror/legacy-modes/mode/groovy")).groovy,
  haskell: async () => (await import("@codemirror/legacy-modes/mode/haskell")).haskell,
  lua: async () => (await import("@codemirror/legacy-modes/mode/lua")).lua,
  ocaml: async () => (await import("@codemirror/legacy-modes/mode/mllike")).oCaml,
  octave: async () => (await import("@codemirror/legacy-modes/mode/octave")).octave,
  pascal: async () => (await import("@codemirror/legacy-modes/mode/pascal")).pascal,
  perl: async () => (await import("@codemirror/legacy-modes/mode/perl")).perl,
  php: clike("c"),
  r: async () => (await import("@codemirror/legacy-modes/mode/r")).r,
  ruby: async () => (await import("@codemirror/legacy-modes/mode/ruby")).ruby,
  crystal: async () => (await import("@codemirror/legacy-modes/mode/crystal")).crystal,
  rust: async () => (await import("@codemirror/legacy-modes/mode/rust")).rust,
  sqlite: async () => (await import("@codemirror/legacy-modes/mode/sql")).sqlite,
  forth: async () => (await import("@codemirror/legacy-modes/mode/forth")).forth,
  racket: async () => (await import("@codemirror/legacy-modes/mode/scheme")).scheme,
  scheme: async () => (await import("@codemirror/legacy-modes/mode/scheme")).scheme,
  tcl: async () => (await import("@codemirror/legacy-modes/mode/tcl")).tcl,
  raku: async () => (await import("@codemirror/legacy-modes/mode/perl")).perl,
  swift: async () => (await import("@codemirror/legacy-modes/mode/swift")).swift,
  julia: async () => (await import("@codemirror/legacy-modes/mode/julia")).julia,
};

export async function languageMode(language: string): Promise<Extension> {
  const load = LOADERS[language];
  if (!load) return [];
  try {
    return StreamLanguage.define(await load());
  } catch {
    return []; // highlighting is a nicety: never fail to open the room over it
  }
}

export const highlightedLanguages = Object.keys(LOADERS);
