/** A one-button maplibre control with an outline icon, as the map's own zoom buttons look. */
import type { IControl } from 'maplibre-gl';

export interface MapButtonOptions {
  className: string;
  /** Tooltip and accessible name. */
  title: string;
  /** SVG path data of the icon (24 × 24, stroked). */
  iconPath: string;
  onClick(button: HTMLButtonElement): void;
  /** A toggle: its aria-pressed starts false. */
  toggle?: boolean;
}

export function mapButton(o: MapButtonOptions): IControl {
  let group: HTMLDivElement | null = null;
  return {
    onAdd: () => {
      group = document.createElement('div');
      group.className = 'maplibregl-ctrl maplibregl-ctrl-group';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = o.className;
      b.title = o.title;
      b.setAttribute('aria-label', o.title);
      if (o.toggle) b.setAttribute('aria-pressed', 'false');
      b.innerHTML = `<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" style="display:block;margin:auto"><path fill="none" stroke="#333" stroke-width="2" d="${o.iconPath}"/></svg>`;
      b.addEventListener('click', () => o.onClick(b));
      group.appendChild(b);
      return group;
    },
    onRemove: () => group?.remove(),
  };
}
