// The Gradio page's scripts each add their part to window.dailies: the components' js_on_load
// and the events' `js` call them (dailies/app/assets.py loads them). This one is what events share.
(() => {
  const dailies = (window.dailies ||= {});

  // Scroll the first match of `selector` into view once Gradio has drawn it (it may take a few
  // frames after an event's answer). For an event's `.then(None, js=...)`.
  dailies.scrollTo = (selector, options = { block: "center", behavior: "instant" }) =>
    new Promise((done) => {
      const show = (tries) => {
        const target = document.querySelector(selector);
        if (target) target.scrollIntoView(options);
        if (target || tries <= 0) return done();
        setTimeout(() => show(tries - 1), 50);
      };
      show(40);
    });
})();
