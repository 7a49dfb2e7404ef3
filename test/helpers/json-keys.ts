/**
 * The keys that occur twice in one object of a JSON text, read from the raw text: JSON.parse
 * keeps the last of two equal keys and so hides exactly what this looks for.
 */
export function duplicateKeys(json: string): string[] {
  JSON.parse(json); // valid JSON first: the walk below trusts the structure
  const dups: string[] = [];
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const str = JSON.parse(json.slice(i, j + 1)) as string;
      const top = stack.at(-1);
      if (top?.keys && top.expectKey) {
        if (top.keys.has(str)) dups.push(str);
        top.keys.add(str);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === '[') {
      stack.push({ keys: null, expectKey: false });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack.at(-1);
      if (top?.keys) top.expectKey = true;
    }
  }
  return dups;
}
