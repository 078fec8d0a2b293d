/**
 * Weighted linear least squares, min_b Σ w_i (y_i − A_i·b)², by Householder QR of diag(√w)·A: no normal equations,
 * so the condition number is not squared. Sized for the explainers: thousands of rows, up to a few hundred columns.
 */

export class RankDeficientError extends Error {}

/**
 * rows: n rows of p columns; weights: n non-negative weights; y: n targets. Returns the p coefficients. Throws
 * RankDeficientError when diag(√w)·A does not have full column rank (relative to its largest diagonal of R).
 */
export function weightedLeastSquares(rows: ArrayLike<number>[], weights: ArrayLike<number>, y: ArrayLike<number>, p: number): Float64Array {
  const n = rows.length;
  if (p === 0) return new Float64Array(0);
  if (n < p) throw new RankDeficientError(`${n} equations for ${p} unknowns`);
  // Column-major copy of √w·A, and √w·y.
  const a = new Float64Array(n * p);
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.sqrt(weights[i]);
    const row = rows[i];
    for (let j = 0; j < p; j++) a[j * n + i] = s * row[j];
    b[i] = s * y[i];
  }
  const diag = new Float64Array(p);
  const v = new Float64Array(n);
  for (let k = 0; k < p; k++) {
    const col = k * n;
    // Norm of a[k:, k], scaled against overflow and underflow.
    let scale = 0;
    for (let i = k; i < n; i++) scale = Math.max(scale, Math.abs(a[col + i]));
    if (scale === 0) throw new RankDeficientError(`column ${k} is zero after elimination`);
    let sum = 0;
    for (let i = k; i < n; i++) { const t = a[col + i] / scale; sum += t * t; }
    const norm = scale * Math.sqrt(sum);
    const alpha = a[col + k] > 0 ? -norm : norm;
    // v = a[k:, k] − alpha·e1; H = I − 2 v vᵀ / vᵀv.
    let vv = 0;
    for (let i = k; i < n; i++) { v[i] = a[col + i]; }
    v[k] -= alpha;
    for (let i = k; i < n; i++) vv += v[i] * v[i];
    diag[k] = alpha;
    if (vv === 0) continue;
    for (let j = k + 1; j < p; j++) {
      const cj = j * n;
      let dot = 0;
      for (let i = k; i < n; i++) dot += v[i] * a[cj + i];
      const f = (2 * dot) / vv;
      for (let i = k; i < n; i++) a[cj + i] -= f * v[i];
    }
    let dot = 0;
    for (let i = k; i < n; i++) dot += v[i] * b[i];
    const f = (2 * dot) / vv;
    for (let i = k; i < n; i++) b[i] -= f * v[i];
  }
  let largest = 0;
  for (let k = 0; k < p; k++) largest = Math.max(largest, Math.abs(diag[k]));
  const tolerance = largest * 1e-10 * Math.max(n, p);
  for (let k = 0; k < p; k++) {
    if (Math.abs(diag[k]) <= tolerance) throw new RankDeficientError(`R[${k}][${k}] = ${diag[k]} is negligible`);
  }
  // Back substitution R x = (Qᵀ √w y)[0:p]; R's strict upper triangle is in a (rows < column index).
  const x = new Float64Array(p);
  for (let k = p - 1; k >= 0; k--) {
    let s = b[k];
    for (let j = k + 1; j < p; j++) s -= a[j * n + k] * x[j];
    x[k] = s / diag[k];
  }
  return x;
}
