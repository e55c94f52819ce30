// Building the page with DOM APIs only. Everything that comes from the server (device names, HL7
// fields, user names) reaches the page as text nodes, never as markup: a device named
// `<img src=x onerror=…>` shows as those characters (issue 6, stored XSS).

/**
 * h("button", { class: "big", onclick: f, disabled: true }, "text", child, [more]) — an element.
 * Strings become text nodes; null, undefined and false children are left out; arrays are flattened.
 * Properties the element has (value, checked, disabled, hidden) are set as properties, others as attributes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Appends children as h() takes them. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces all of an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}
