/**
 * Money is integer fen (1 CNY = 100 fen). Floats never carry money: every
 * amount that enters the system is checked to be a safe integer here.
 */
export type Fen = number;

export const FEN_PER_CNY = 100;

export function isFen(value: unknown): value is Fen {
  return typeof value === "number" && Number.isSafeInteger(value);
}

export function cnyToFen(cny: number): Fen {
  const fen = Math.round(cny * FEN_PER_CNY);
  if (!Number.isSafeInteger(fen) || Math.abs(fen / FEN_PER_CNY - cny) > 1e-9) {
    throw new RangeError(`not a whole number of fen: ${cny} CNY`);
  }
  return fen;
}

/**
 * "1,234.50" style rendering for reports ({ grouped: false }: "1234.50", for CSV and other
 * machine-read text); integer arithmetic, never used for arithmetic itself.
 */
export function formatFen(fen: Fen, options: { grouped?: boolean } = {}): string {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  const whole = Math.floor(abs / FEN_PER_CNY);
  const yuan = options.grouped === false ? String(whole) : whole.toLocaleString("en-US");
  const cents = String(abs % FEN_PER_CNY).padStart(2, "0");
  return `${sign}${yuan}.${cents}`;
}
