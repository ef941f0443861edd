/** Panels that refresh on a timer: run `load` on mount and every `seconds`, stop on unmount. */
import { onBeforeUnmount, onMounted } from 'vue';

export function usePolling(load: () => Promise<void>, seconds: number): void {
  let timer: ReturnType<typeof setInterval> | null = null;
  onMounted(() => {
    void load();
    timer = setInterval(() => void load(), seconds * 1000);
  });
  onBeforeUnmount(() => {
    if (timer) clearInterval(timer);
  });
}
