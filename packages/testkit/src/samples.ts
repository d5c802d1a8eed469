/**
 * Small files of each attachment type the Email API takes, with the content signature the
 * gateway checks (`file-type`): tests attach these instead of arbitrary bytes.
 */

/** The API's attachment types. */
export type SampleType = 'csv' | 'doc' | 'docx' | 'calendar' | 'jpeg' | 'pdf' | 'png' | 'xls' | 'xlsx';

const b64 = (text: string): Buffer => Buffer.from(text, 'base64');

/** An OLE compound file (CFB) header, as Word 97-2003 .doc and Excel 97-2003 .xls files start. */
const CFB = Buffer.concat([Buffer.from('d0cf11e0a1b11ae1000000000000000000000000000000003e000300feff0900', 'hex'), Buffer.alloc(480, 0xff)]);

export const SAMPLE_FILES: Readonly<Record<SampleType, Buffer>> = {
  csv: Buffer.from('id,name,total\r\n1,Alice,12.50\r\n2,"Bob, Jr.",7\r\n'),
  doc: CFB,
  // [Content_Types].xml naming word/document.xml, then that part
  docx: b64(
    'UEsDBBQAAAAIAG6Dfl2Rzx8FvQAAACkBAAATAAAAW0NvbnRlbnRfVHlwZXNdLnhtbH2QvQ7CMAyEXyXKiqgLAwNqywCswMALWKlbIpofJebv7XEBMTAw2t/d+eRqdXeDulLKNvhaz4pSr5rq+IiUlRCfa31ijkuAbE7kMBchkhfSheSQZUw9RDRn7AnmZbkAEzyT5ymPGbqpNtThZWC1vcv6fUXsWq3fuvFUrTHGwRpkwTBSaKq9lEq2JXXAxDt0ooJbSC20wVycOIv/MVff/nSdhq6zhr7+MS2mYChn63s3FF/i0PrJpwe8ntE8AVBLAwQUAAAACABug35dsDTIKIEAAACthgEAEQAAAHdvcmQvZG9jdW1lbnQueG1s7cGxDQAQAACwk+winsGIhXC+Nwxt04l1lt3bWCFfAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA4FsPUEsBAhQDFAAAAAgAboN+XZHPHwW9AAAAKQEAABMAAAAAAAAAAAAAAIABAAAAAFtDb250ZW50X1R5cGVzXS54bWxQSwECFAMUAAAACABug35dsDTIKIEAAACthgEAEQAAAAAAAAAAAAAAgAHuAAAAd29yZC9kb2N1bWVudC54bWxQSwUGAAAAAAIAAgCAAAAAngEAAAAA',
  ),
  calendar: Buffer.from('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1@test\r\nDTSTART:20260101T090000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'),
  jpeg: Buffer.concat([Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'), Buffer.alloc(64, 0x20), Buffer.from('ffd9', 'hex')]),
  pdf: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
  // a 1x1 grey pixel
  png: b64('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=='),
  xls: CFB,
  // _rels/.rels, xl/workbook.xml, then [Content_Types].xml
  xlsx: b64(
    'UEsDBBQAAAAIAG6Dfl1LChtoGwAAAKAPAAALAAAAX3JlbHMvLnJlbHPtwzENAAAIAzBJGFjQNfnI4GmTprNRVVVVXx9QSwMEFAAAAAgAboN+XRbDehkGAAAABAAAAA8AAAB4bC93b3JrYm9vay54bWyzKde3AwBQSwMEFAAAAAgAboN+XVm86ZfAAAAAIQEAABMAAABbQ29udGVudF9UeXBlc10ueG1sfVC9csIwDH4Vn9ceVmBg6CVhgK6lQ19AdRTii235bEHD29eBTh066aTv99QeluDVjXJxHDu9NY0+9O3nPVFRFYml05NIegUodqKAxXCiWJGRc0Cpa75AQjvjhWDXNHuwHIWibGT10H17ohGvXtTbUs/PlCrX6vjkrVGdxpS8sygVhhWFvj3XUtkNpD4wyzuGyoLFwzfn+Yt5Nv+b3OLwp+mGx9FZGtheQ5WYkjLhUCYiCd48pgno4stvPjye0P8AUEsBAhQDFAAAAAgAboN+XUsKG2gbAAAAoA8AAAsAAAAAAAAAAAAAAIABAAAAAF9yZWxzLy5yZWxzUEsBAhQDFAAAAAgAboN+XRbDehkGAAAABAAAAA8AAAAAAAAAAAAAAIABRAAAAHhsL3dvcmtib29rLnhtbFBLAQIUAxQAAAAIAG6Dfl1ZvOmXwAAAACEBAAATAAAAAAAAAAAAAACAAXcAAABbQ29udGVudF9UeXBlc10ueG1sUEsFBgAAAAADAAMAtwAAAGgBAAAAAA==',
  ),
};

/** A Windows executable header (`MZ`), to name as a PDF and see it refused. */
export const SAMPLE_EXECUTABLE: Buffer = Buffer.concat([Buffer.from('4d5a90000300000004000000ffff0000b800000000000000400000000000000000000000', 'hex'), Buffer.alloc(200, 0)]);
