/**
 * Saves text or a data URL as a file through a temporary link: browser mode's download (the desktop
 * window uses its Save dialog instead, save.ts). No navigation happens.
 */
export function download(fileName: string, content: string, mimeType: string): void {
  const url = content.startsWith('data:') ? content : URL.createObjectURL(new Blob([content], { type: mimeType }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.hidden = true;
  document.body.append(a);
  a.click();
  // The browser reads the link's name and content after this task (later still on a busy machine):
  // both stay until it surely has, or the file may come without its name.
  setTimeout(() => {
    a.remove();
    if (!content.startsWith('data:')) URL.revokeObjectURL(url);
  }, 60_000);
}
