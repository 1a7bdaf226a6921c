// The gallery grid's behaviour (gr.HTML js_on_load: `element` is the grid, `trigger` sends an
// event to Python). Posters load lazily; a card's video is fetched only while the mouse is over
// it; a click or a tap opens the detail view, whose player starts at once.
(window.dailies ||= {}).gallery = (element, trigger) => {
  const play = (card) => {
    if (!card || card.querySelector("video")) return;
    const video = document.createElement("video");
    Object.assign(video, { muted: true, loop: true, playsInline: true, autoplay: true, preload: "auto" });
    video.src = card.dataset.video;
    (card.querySelector(".dailies-card-media") || card).appendChild(video);
    video.play().catch(() => {});
  };
  const stop = (card) => {
    const video = card && card.querySelector("video");
    if (video) {
      video.pause();
      video.removeAttribute("src");
      video.remove();
    }
  };
  const cardOf = (target) => target instanceof Element && target.closest(".dailies-card");
  element.addEventListener("pointerover", (e) => {
    if (e.pointerType === "mouse") play(cardOf(e.target));
  });
  element.addEventListener("pointerout", (e) => {
    const card = cardOf(e.target);
    if (card && !card.contains(e.relatedTarget)) stop(card);
  });
  element.addEventListener("click", (e) => {
    const card = cardOf(e.target);
    if (card) trigger("click", { id: card.dataset.id });
  });
};
