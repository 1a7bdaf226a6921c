// What a visitor types in the Settings fold stays what they typed (issue 19).
//
// Gradio (6.x) draws the fields of a closed gr.Accordion only when it is first opened, then,
// after a tick, its async work settling and an animation frame (tens of ms; more under load),
// sets each of them once more to the value its page tree holds: the value it was drawn with
// (`render_previously_invisible_children` in its core). A size typed in between went back to
// the old value on screen and in what Generate sent, with nothing to say so.
//
// So, for a while after the fold's fields are first drawn, a field the visitor has typed into
// (or dragged) is watched: when the page sets it back to the value it last set itself, the
// visitor's value is put back, as if typed again. Anything else the page sets (a backend's
// rules, an aspect preset, "Use these settings") stands. The watch ends when the visitor taps
// or keys anything but the fold's fields and Generate (the page's answer to that may rightly set
// a field back to an old value), or after WATCH_MS; the fields then have their own `value` again.
(() => {
  const FOLD = "#settings";
  const WATCH_MS = 10_000;
  // Fields whose `value` Gradio's components set; a slider's range follows its number box.
  const WATCHED = 'input[type="number"], input[type="text"], textarea';
  const TYPING = `${FOLD} :is(${WATCHED}, input[type="range"])`;

  const states = new WeakMap(); // a component's block -> what the page and the visitor last put in it
  const watched = new Set();
  let until = 0; // the watch lasts while performance.now() < until

  // "320" and "0320" are one number: the box may show either.
  const same = (field, a, b) => a === b || (field.type === "number" && a !== "" && b !== "" && +a === +b);

  const stateOf = (field) => {
    const block = field.closest(".block") || field;
    if (!states.has(block)) states.set(block, { page: null, typed: null, field: null });
    return states.get(block);
  };

  const putBack = (state) => {
    const { field, typed } = state;
    const native = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(field), "value");
    native.set.call(field, typed);
    field.dispatchEvent(new Event("input", { bubbles: true })); // the component takes it as typed
  };

  const watch = (field) => {
    const native = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(field), "value");
    const state = stateOf(field);
    if (state.page === null) state.page = native.get.call(field);
    Object.defineProperty(field, "value", {
      configurable: true,
      get() {
        return native.get.call(this);
      },
      set(value) {
        native.set.call(this, value);
        const now = native.get.call(this);
        if (state.typed === null) {
          state.page = now;
        } else if (same(this, now, state.typed)) {
          // The component showing what the visitor typed (a slider's box after its range).
        } else if (same(this, now, state.page) && performance.now() < until) {
          setTimeout(() => putBack(state)); // after the component's own update has finished
        } else {
          state.page = now; // the page set a new value: that is what is shown and sent
          state.typed = null;
        }
      },
    });
    watched.add(field);
  };

  const stop = () => {
    until = 0;
    observer.disconnect();
    for (const field of watched) delete field.value; // the element's own accessor again
    watched.clear();
  };

  const observer = new MutationObserver(() => {
    const fields = document.querySelectorAll(`${FOLD} :is(${WATCHED})`);
    if (!fields.length) return;
    if (!until) {
      until = performance.now() + WATCH_MS;
      setTimeout(stop, WATCH_MS);
    }
    for (const field of fields) if (!watched.has(field)) watch(field);
  });
  observer.observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener(
    "input",
    (event) => {
      const field = event.target;
      if (!until || !field.matches?.(TYPING)) return;
      const state = stateOf(field);
      state.typed = field.value;
      state.field = field;
    },
    true,
  );
  const elsewhere = (event) => {
    if (until && !event.target.closest?.(`${TYPING}, #submit`)) stop();
  };
  document.addEventListener("pointerdown", elsewhere, true);
  document.addEventListener("keydown", elsewhere, true);
})();
