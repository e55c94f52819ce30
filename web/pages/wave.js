// A waveform strip: the last few seconds of one channel drawn as a line on a canvas, sweeping like a
// monitor's. Samples come thinned from the `wave` live message; the strip redraws at most once a frame.
import { obsLabel } from "./ui.js";

const SECONDS = 5;

export class WaveStrip {
  constructor(canvas) {
    this.canvas = canvas;
    this.buf = [];
    this.channel = null;
    this.fs = 0;
    this.frame = 0;
  }

  push(w) {
    if (!Array.isArray(w.samples) || !(w.fs > 0)) return;
    // One strip per device: the first channel seen (a monitor's lead II, usually) keeps it.
    if (this.channel !== null && w.channel !== this.channel) return;
    this.channel = w.channel;
    this.fs = w.fs;
    this.buf.push(...w.samples);
    const keep = Math.ceil(w.fs * SECONDS);
    if (this.buf.length > keep) this.buf.splice(0, this.buf.length - keep);
    this.canvas.setAttribute("aria-label", obsLabel(String(w.channel)));
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(c.clientWidth * ratio));
    const height = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== width) c.width = width;
    if (c.height !== height) c.height = height;
    const g = c.getContext("2d");
    g.clearRect(0, 0, width, height);
    const n = this.buf.length;
    if (n < 2) return;
    let min = Infinity;
    let max = -Infinity;
    for (const v of this.buf) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const span = max - min || 1;
    const total = Math.ceil(this.fs * SECONDS);
    const pad = 6 * ratio;
    g.lineWidth = 2 * ratio;
    g.lineJoin = "round";
    g.strokeStyle = getComputedStyle(c).color;
    g.beginPath();
    for (let i = 0; i < n; i++) {
      const x = (i / (total - 1)) * width;
      const y = pad + (1 - (this.buf[i] - min) / span) * (height - 2 * pad);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    }
    g.stroke();
    g.fillStyle = g.strokeStyle;
    g.font = `${12 * ratio}px system-ui, sans-serif`;
    g.fillText(obsLabel(String(this.channel)), pad, 14 * ratio);
  }

  stop() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}
