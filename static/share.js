// A share page's video (/g/<id> and its /g/<id>/player) plays by itself, muted so that browsers
// allow it, unless the visitor asked for less motion.
(() => {
  const video = document.querySelector(".share-video");
  if (!video || matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  video.autoplay = true;
  video.play().catch(() => {}); // it may have loaded before this ran (a deferred script)
})();
