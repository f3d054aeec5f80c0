// CodeMirror 6 bound to one Y.Text of the live document (y-codemirror.next): shared text,
// shared undo history per user, and remote cursors and selections with names and colours.
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection, highlightActiveLineGutter } from "@codemirror/view";
import { EditorState, Compartment, type Extension } from "@codemirror/state";
import { defaultKeymap, indentWithTab } from "@codemirror/commands";
import { syntaxHighlighting, defaultHighlightStyle, indentOnInput, bracketMatching } from "@codemirror/language";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import * as Y from "yjs";
import type { Awareness } from "y-protocols/awareness";

export interface EditorHandle {
  view: EditorView;
  setReadOnly(readOnly: boolean): void;
  setMode(mode: Extension): void;
  destroy(): void;
}

export function createEditor(
  parent: HTMLElement,
  text: Y.Text,
  awareness: Awareness,
  options: { readOnly: boolean; mode: Extension; label: string; onRun: () => void },
): EditorHandle {
  const readOnly = new Compartment();
  const mode = new Compartment();
  const undoManager = new Y.UndoManager(text);
  const readOnlyExt = (ro: boolean) => [EditorState.readOnly.of(ro), EditorView.editable.of(!ro)];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        keymap.of([
          { key: "Mod-Enter", run: () => (options.onRun(), true) },
          ...yUndoManagerKeymap,
          ...defaultKeymap,
          indentWithTab,
        ]),
        yCollab(text, awareness, { undoManager }),
        readOnly.of(readOnlyExt(options.readOnly)),
        mode.of(options.mode),
        EditorView.contentAttributes.of({ "aria-label": options.label }),
        EditorView.theme({}, {}),
      ],
    }),
  });
  return {
    view,
    setReadOnly: (ro) => view.dispatch({ effects: readOnly.reconfigure(readOnlyExt(ro)) }),
    setMode: (ext) => view.dispatch({ effects: mode.reconfigure(ext) }),
    destroy: () => {
      view.destroy();
      undoManager.destroy();
    },
  };
}
