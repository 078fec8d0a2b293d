/**
 * A page of dark glyph-like strokes in lines on a light background, normalized as PaddleOCR does (ImageNet mean and
 * std), as the OCR detection model's input [1, 3, size, size]: the model finds text in it. On noise its probability
 * map stays near 1e-7 everywhere, where a relative error between two models says nothing.
 */
export function textPage(size: number): Float32Array {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const pixels = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const line = Math.floor(y / 24);
      const inLine = y % 24 >= 8 && y % 24 < 20;
      const column = x + line * 5;
      const inGlyph = column % 9 < 6 && (Math.floor(column / 9) * 7 + line) % 5 !== 0;
      const stroke = inLine && inGlyph && x > 8 && x < size - 8 && ((x + y) % 3 !== 0 || y % 24 === 8 || y % 24 === 19);
      for (let c = 0; c < 3; c++) pixels[c * size * size + y * size + x] = ((stroke ? 0.1 : 0.95) - mean[c]) / std[c];
    }
  }
  return pixels;
}
