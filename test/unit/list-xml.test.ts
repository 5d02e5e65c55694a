// storage/list-xml: the fast path's reader of ListObjectsV2 pages. What it
// reads must be what the SDK reads; whatever it is not sure of gives
// `undefined`, and the page is asked for again through the SDK.
import { describe, expect, it } from 'vitest';
import { parseListPage } from '../../src/storage/list-xml.js';

const page = (contents: string, top = '<IsTruncated>false</IsTruncated>'): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>${top}${contents}</ListBucketResult>`;
const item = (key: string, extra = '<Size>3</Size><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><LastModified>2026-12-06T10:00:00.000Z</LastModified>'): string =>
  `<Contents><Key>${key}</Key>${extra}<StorageClass>STANDARD</StorageClass></Contents>`;

describe('parseListPage', () => {
  it("reads S3's page: keys, sizes, unquoted ETags, dates, truncation and the continuation token", { timeout: 5_000 }, () => {
    const xml = page(
      item('p/a.txt') + item('p/b', '<LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>"fba9dede5f27731c9771645a39863328-2"</ETag><Size>434234</Size>'),
      '<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>',
    );
    expect(parseListPage(xml)).toEqual({
      objects: [
        { key: 'p/a.txt', size: 3, etag: '0123456789abcdef0123456789abcdef', lastModifiedMs: Date.parse('2026-12-06T10:00:00.000Z') },
        { key: 'p/b', size: 434234, etag: 'fba9dede5f27731c9771645a39863328-2', lastModifiedMs: Date.parse('2009-10-12T17:50:30.000Z') },
      ],
      isTruncated: true,
      nextContinuationToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
    });
  });

  it('decodes the predefined entities and character references in keys, and reads an empty page', { timeout: 5_000 }, () => {
    const got = parseListPage(page(item('p/a&amp;b&lt;c&gt;d&quot;e&apos;f') + item('p/&#38;&#x26;&#x1F600;&#233;') + item(' p/ spaced ')));
    expect(got?.objects.map((o) => o.key)).toEqual([`p/a&b<c>d"e'f`, 'p/&&😀é', ' p/ spaced ']);
    expect(parseListPage(page(''))).toEqual({ objects: [], isTruncated: false, nextContinuationToken: undefined });
  });

  it('missing optional elements read as the SDK reads them: no size 0, no ETag "", no date undefined', { timeout: 5_000 }, () => {
    expect(parseListPage(page(item('p/x', '')))?.objects).toEqual([{ key: 'p/x', size: 0, etag: '', lastModifiedMs: undefined }]);
  });

  it.each([
    ['a CDATA section', page(item('<![CDATA[p/x]]>'))],
    ['a carriage return (XML reads it as a line feed)', page(item('p/a\rb'))],
    ['an entity XML does not predefine', page(item('p/a&nbsp;b'))],
    ['a bare ampersand', page(item('p/a&b'))],
    ['a surrogate character reference', page(item('p/&#xD800;'))],
    ['a reference past U+10FFFF', page(item('p/&#x110000;'))],
    ['markup inside a key', page(item('p/<b>x</b>'))],
    ['a key of blanks with a line break', page(item(' \n '))],
    ['a <Contents> without a key', page('<Contents><Size>1</Size></Contents>')],
    ['a size that is not a count', page(item('p/x', '<Size>12a</Size>'))],
    ['a negative size', page(item('p/x', '<Size>-1</Size>'))],
    ['a date that does not parse', page(item('p/x', '<Size>1</Size><LastModified>yesterday</LastModified>'))],
    ['a key count other than the keys read', page(item('p/x'), '<KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>')],
    ['a truncation flag that is neither true nor false', page(item('p/x'), '<IsTruncated>yes</IsTruncated>')],
    ['a token with markup', page(item('p/x'), '<IsTruncated>true</IsTruncated><NextContinuationToken>a<b/></NextContinuationToken>')],
    ['an error document', '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'],
    ['a page cut short', page(item('p/x')).slice(0, -10)],
  ])('gives the page back to the SDK for %s', (_what, xml) => {
    expect(parseListPage(xml)).toBeUndefined();
  });
});
