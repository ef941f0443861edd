/** Connection admission: a global cap and a per-remote-address cap, counted by this process. */
export type AdmissionRefusal = 'max_connections' | 'max_connections_per_ip';

export class ConnectionLimiter {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Takes a slot for `address`, or says which cap refuses it. */
  tryAcquire(address: string): AdmissionRefusal | null {
    if (this.total >= this.maxConnections) return 'max_connections';
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress) return 'max_connections_per_ip';
    this.total++;
    this.perAddress.set(address, n + 1);
    return null;
  }

  release(address: string): void {
    const n = this.perAddress.get(address) ?? 0;
    if (n <= 0) return;
    this.total--;
    if (n === 1) this.perAddress.delete(address);
    else this.perAddress.set(address, n - 1);
  }

  get open(): number {
    return this.total;
  }
}
