-- catalogdb q3c compatibility layer (COMPAT_VERSION 2).
--
-- Pure SQL / PL/pgSQL functions with the names, arguments and results of the q3c 2.0.0 extension, for
-- servers without it (the embedded PostgreSQL, managed services). Written from the published method
-- (Koposov & Bartunov 2006, "Q3C, Quad Tree Cube") and the behaviour of the extension, not from its code.
--
-- Pixelisation: a cube with gnomonic faces (0 north, 1..4 equatorial from RA 0, 5 south), each face cut
-- into 2^30 x 2^30 cells numbered along a Morton (Z-order) curve, ipix = face * 2^60 + morton(xi, yi).
-- A Z-order cell at level s (2^s x 2^s finest cells) is one contiguous ipix range, so a B-tree on
-- q3c_ang2ipix(ra, dec) answers "cell contains point" with one range scan.
--
-- Covering of a circle (centre c, radius r): on every face F the circle can reach, every point of the
-- circle that lies on F projects (gnomonic, face F) within h = r * sec^2(54.7356 deg + r) of the
-- projection of c (the gnomonic stretch is at most sec^2 of the angle from the face centre, and every arc
-- from c stays within 54.7356 deg + r of F's centre). The box of half-width h, clipped to the face, is
-- covered by the cells of the coarsest level s whose cell is wider than the box: at most 2 x 2 cells on
-- one face; at most 4 cells in all near an edge; near a cube corner the level is raised until the cells
-- number at most 4; circles too large for the box argument use whole faces. Every range is a superset,
-- so the exact distance test after it decides the rows.
--
-- Calls between these functions name their schema (@extschema@, replaced by catalogdb.db.q3c with the
-- schema installed into), because CREATE INDEX and ANALYZE run index expressions with a search_path of
-- pg_catalog only (PostgreSQL 17+).
--
-- Every function is CREATE OR REPLACE, so re-running this file upgrades an older compat install.

CREATE OR REPLACE FUNCTION q3c_compat_version() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 2 $$;

CREATE OR REPLACE FUNCTION q3c_version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '2.0.0 (catalogdb compat 2)'::text $$;

-- spread(v): bit k of v (v < 2^30) to bit 2k, by three lookups in a 1024-entry table.
CREATE OR REPLACE FUNCTION q3c_compat_spread_table() RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '{0,1,4,5,16,17,20,21,64,65,68,69,80,81,84,85,256,257,260,261,272,273,276,277,320,321,324,325,336,337,340,341,1024,1025,1028,1029,1040,1041,1044,1045,1088,1089,1092,1093,1104,1105,1108,1109,1280,1281,1284,1285,1296,1297,1300,1301,1344,1345,1348,1349,1360,1361,1364,1365,4096,4097,4100,4101,4112,4113,4116,4117,4160,4161,4164,4165,4176,4177,4180,4181,4352,4353,4356,4357,4368,4369,4372,4373,4416,4417,4420,4421,4432,4433,4436,4437,5120,5121,5124,5125,5136,5137,5140,5141,5184,5185,5188,5189,5200,5201,5204,5205,5376,5377,5380,5381,5392,5393,5396,5397,5440,5441,5444,5445,5456,5457,5460,5461,16384,16385,16388,16389,16400,16401,16404,16405,16448,16449,16452,16453,16464,16465,16468,16469,16640,16641,16644,16645,16656,16657,16660,16661,16704,16705,16708,16709,16720,16721,16724,16725,17408,17409,17412,17413,17424,17425,17428,17429,17472,17473,17476,17477,17488,17489,17492,17493,17664,17665,17668,17669,17680,17681,17684,17685,17728,17729,17732,17733,17744,17745,17748,17749,20480,20481,20484,20485,20496,20497,20500,20501,20544,20545,20548,20549,20560,20561,20564,20565,20736,20737,20740,20741,20752,20753,20756,20757,20800,20801,20804,20805,20816,20817,20820,20821,21504,21505,21508,21509,21520,21521,21524,21525,21568,21569,21572,21573,21584,21585,21588,21589,21760,21761,21764,21765,21776,21777,21780,21781,21824,21825,21828,21829,21840,21841,21844,21845,65536,65537,65540,65541,65552,65553,65556,65557,65600,65601,65604,65605,65616,65617,65620,65621,65792,65793,65796,65797,65808,65809,65812,65813,65856,65857,65860,65861,65872,65873,65876,65877,66560,66561,66564,66565,66576,66577,66580,66581,66624,66625,66628,66629,66640,66641,66644,66645,66816,66817,66820,66821,66832,66833,66836,66837,66880,66881,66884,66885,66896,66897,66900,66901,69632,69633,69636,69637,69648,69649,69652,69653,69696,69697,69700,69701,69712,69713,69716,69717,69888,69889,69892,69893,69904,69905,69908,69909,69952,69953,69956,69957,69968,69969,69972,69973,70656,70657,70660,70661,70672,70673,70676,70677,70720,70721,70724,70725,70736,70737,70740,70741,70912,70913,70916,70917,70928,70929,70932,70933,70976,70977,70980,70981,70992,70993,70996,70997,81920,81921,81924,81925,81936,81937,81940,81941,81984,81985,81988,81989,82000,82001,82004,82005,82176,82177,82180,82181,82192,82193,82196,82197,82240,82241,82244,82245,82256,82257,82260,82261,82944,82945,82948,82949,82960,82961,82964,82965,83008,83009,83012,83013,83024,83025,83028,83029,83200,83201,83204,83205,83216,83217,83220,83221,83264,83265,83268,83269,83280,83281,83284,83285,86016,86017,86020,86021,86032,86033,86036,86037,86080,86081,86084,86085,86096,86097,86100,86101,86272,86273,86276,86277,86288,86289,86292,86293,86336,86337,86340,86341,86352,86353,86356,86357,87040,87041,87044,87045,87056,87057,87060,87061,87104,87105,87108,87109,87120,87121,87124,87125,87296,87297,87300,87301,87312,87313,87316,87317,87360,87361,87364,87365,87376,87377,87380,87381,262144,262145,262148,262149,262160,262161,262164,262165,262208,262209,262212,262213,262224,262225,262228,262229,262400,262401,262404,262405,262416,262417,262420,262421,262464,262465,262468,262469,262480,262481,262484,262485,263168,263169,263172,263173,263184,263185,263188,263189,263232,263233,263236,263237,263248,263249,263252,263253,263424,263425,263428,263429,263440,263441,263444,263445,263488,263489,263492,263493,263504,263505,263508,263509,266240,266241,266244,266245,266256,266257,266260,266261,266304,266305,266308,266309,266320,266321,266324,266325,266496,266497,266500,266501,266512,266513,266516,266517,266560,266561,266564,266565,266576,266577,266580,266581,267264,267265,267268,267269,267280,267281,267284,267285,267328,267329,267332,267333,267344,267345,267348,267349,267520,267521,267524,267525,267536,267537,267540,267541,267584,267585,267588,267589,267600,267601,267604,267605,278528,278529,278532,278533,278544,278545,278548,278549,278592,278593,278596,278597,278608,278609,278612,278613,278784,278785,278788,278789,278800,278801,278804,278805,278848,278849,278852,278853,278864,278865,278868,278869,279552,279553,279556,279557,279568,279569,279572,279573,279616,279617,279620,279621,279632,279633,279636,279637,279808,279809,279812,279813,279824,279825,279828,279829,279872,279873,279876,279877,279888,279889,279892,279893,282624,282625,282628,282629,282640,282641,282644,282645,282688,282689,282692,282693,282704,282705,282708,282709,282880,282881,282884,282885,282896,282897,282900,282901,282944,282945,282948,282949,282960,282961,282964,282965,283648,283649,283652,283653,283664,283665,283668,283669,283712,283713,283716,283717,283728,283729,283732,283733,283904,283905,283908,283909,283920,283921,283924,283925,283968,283969,283972,283973,283984,283985,283988,283989,327680,327681,327684,327685,327696,327697,327700,327701,327744,327745,327748,327749,327760,327761,327764,327765,327936,327937,327940,327941,327952,327953,327956,327957,328000,328001,328004,328005,328016,328017,328020,328021,328704,328705,328708,328709,328720,328721,328724,328725,328768,328769,328772,328773,328784,328785,328788,328789,328960,328961,328964,328965,328976,328977,328980,328981,329024,329025,329028,329029,329040,329041,329044,329045,331776,331777,331780,331781,331792,331793,331796,331797,331840,331841,331844,331845,331856,331857,331860,331861,332032,332033,332036,332037,332048,332049,332052,332053,332096,332097,332100,332101,332112,332113,332116,332117,332800,332801,332804,332805,332816,332817,332820,332821,332864,332865,332868,332869,332880,332881,332884,332885,333056,333057,333060,333061,333072,333073,333076,333077,333120,333121,333124,333125,333136,333137,333140,333141,344064,344065,344068,344069,344080,344081,344084,344085,344128,344129,344132,344133,344144,344145,344148,344149,344320,344321,344324,344325,344336,344337,344340,344341,344384,344385,344388,344389,344400,344401,344404,344405,345088,345089,345092,345093,345104,345105,345108,345109,345152,345153,345156,345157,345168,345169,345172,345173,345344,345345,345348,345349,345360,345361,345364,345365,345408,345409,345412,345413,345424,345425,345428,345429,348160,348161,348164,348165,348176,348177,348180,348181,348224,348225,348228,348229,348240,348241,348244,348245,348416,348417,348420,348421,348432,348433,348436,348437,348480,348481,348484,348485,348496,348497,348500,348501,349184,349185,349188,349189,349200,349201,349204,349205,349248,349249,349252,349253,349264,349265,349268,349269,349440,349441,349444,349445,349456,349457,349460,349461,349504,349505,349508,349509,349520,349521,349524,349525}'::bigint[] $$;

CREATE OR REPLACE FUNCTION q3c_compat_spread(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT (@extschema@.q3c_compat_spread_table())[(v & 1023) + 1]
     | ((@extschema@.q3c_compat_spread_table())[((v >> 10) & 1023) + 1] << 20)
     | ((@extschema@.q3c_compat_spread_table())[((v >> 20) & 1023) + 1] << 40)
$$;

CREATE OR REPLACE FUNCTION q3c_compat_morton(xi bigint, yi bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT @extschema@.q3c_compat_spread(xi) | (@extschema@.q3c_compat_spread(yi) << 1) $$;

-- C fmod(v, 360): v - 360 trunc(v / 360) is exact (Sterbenz) once the quotient is right; fix it when
-- the division rounded across an integer.
CREATE OR REPLACE FUNCTION q3c_compat_fmod360(v double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE m double precision := v - 360 * trunc(v / 360);
BEGIN
  IF v >= 0 AND m < 0 THEN m := m + 360; ELSIF v < 0 AND m > 0 THEN m := m - 360; END IF;
  RETURN m;
END $$;

CREATE OR REPLACE FUNCTION q3c_ang2ipix(ra double precision, decl double precision) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  f integer; a double precision; x double precision; y double precision; t double precision;
  face bigint; xi bigint; yi bigint;
BEGIN
  IF NOT (abs(ra) < 'Infinity'::float8 AND abs(decl) < 'Infinity'::float8) THEN RETURN NULL; END IF;
  IF ra < 0 THEN ra := @extschema@.q3c_compat_fmod360(ra) + 360;
  ELSIF ra > 360 THEN ra := @extschema@.q3c_compat_fmod360(ra); END IF;
  IF decl > 90 THEN decl := 90; ELSIF decl < -90 THEN decl := -90; END IF;
  t := (ra + 45) / 90;
  IF t >= 4 THEN t := t - 4; END IF;
  f := trunc(t)::integer;
  a := radians(ra - 90 * f);
  x := tan(a);
  y := tan(radians(decl)) / cos(a);
  IF y > 1 THEN
    face := 0; t := 1 / tan(radians(decl));
    x := sin(radians(ra)) * t; y := cos(radians(ra)) * (-t);
  ELSIF y < -1 THEN
    face := 5; t := 1 / tan(radians(decl));
    x := sin(radians(ra)) * (-t); y := cos(radians(ra)) * (-t);
  ELSE
    face := f + 1;
  END IF;
  -- truncate toward zero, as C's (long) cast does; float8 -> bigint would round
  xi := least(greatest(trunc((x + 1) / 2 * 1073741824::float8), 0), 1073741823)::bigint;
  yi := least(greatest(trunc((y + 1) / 2 * 1073741824::float8), 0), 1073741823)::bigint;
  RETURN (face << 60) + @extschema@.q3c_compat_morton(xi, yi);
END $$;

CREATE OR REPLACE FUNCTION q3c_ang2ipix(ra real, decl real) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT @extschema@.q3c_ang2ipix(ra::double precision, decl::double precision) $$;

-- Like q3c: the angles of the (xi, yi) corner of the finest cell ipix.
CREATE OR REPLACE FUNCTION q3c_ipix2ang(ipix bigint) RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  face integer := (ipix >> 60)::integer; m bigint := ipix & ((1::bigint << 60) - 1);
  xi bigint := 0; yi bigint := 0; b integer; x double precision; y double precision;
  ra double precision; decl double precision;
BEGIN
  FOR b IN 0..29 LOOP
    xi := xi | (((m >> (2 * b)) & 1) << b);
    yi := yi | (((m >> (2 * b + 1)) & 1) << b);
  END LOOP;
  x := xi / 536870912::float8 - 1;
  y := yi / 536870912::float8 - 1;
  IF face BETWEEN 1 AND 4 THEN
    ra := degrees(atan(x)) + 90 * (face - 1);
    decl := degrees(atan(y * cos(atan(x))));
  ELSIF face = 0 THEN
    ra := degrees(atan2(x, -y));
    decl := degrees(atan2(1, sqrt(x * x + y * y)));
  ELSE
    ra := degrees(atan2(x, y));
    decl := -degrees(atan2(1, sqrt(x * x + y * y)));
  END IF;
  IF ra < 0 THEN ra := ra + 360; END IF;
  RETURN ARRAY[ra, decl];
END $$;

-- Solid angle (steradians) of the cell of 2^depth x 2^depth finest cells holding ipix.
CREATE OR REPLACE FUNCTION q3c_pixarea(ipix bigint, depth integer) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  m bigint; xi bigint := 0; yi bigint := 0; b integer;
  x0 double precision; x1 double precision; y0 double precision; y1 double precision;
BEGIN
  IF depth < 1 THEN RAISE EXCEPTION 'Invalid depth. It should be greater than 0.'; END IF;
  IF depth > 30 THEN RAISE EXCEPTION 'Invalid depth. It should be less than 31.'; END IF;
  m := (ipix & ((1::bigint << 60) - 1)) >> (2 * depth);
  FOR b IN 0..(29 - depth) LOOP
    xi := xi | (((m >> (2 * b)) & 1) << b);
    yi := yi | (((m >> (2 * b + 1)) & 1) << b);
  END LOOP;
  x0 := (xi << depth) / 536870912::float8 - 1; x1 := ((xi + 1) << depth) / 536870912::float8 - 1;
  y0 := (yi << depth) / 536870912::float8 - 1; y1 := ((yi + 1) << depth) / 536870912::float8 - 1;
  IF depth < 15 THEN
    -- small cell: gnomonic area element at the centre (the corner sum below cancels badly here)
    x0 := (x0 + x1) / 2; y0 := (y0 + y1) / 2;
    RETURN (x1 - x0) * (y1 - y0) * 4 / power(1 + x0 * x0 + y0 * y0, 1.5);
  END IF;
  -- solid angle of a gnomonic rectangle: sum of atan(xy / sqrt(1 + x^2 + y^2)) over its corners
  RETURN atan(x1 * y1 / sqrt(1 + x1 * x1 + y1 * y1)) - atan(x0 * y1 / sqrt(1 + x0 * x0 + y1 * y1))
       - atan(x1 * y0 / sqrt(1 + x1 * x1 + y0 * y0)) + atan(x0 * y0 / sqrt(1 + x0 * x0 + y0 * y0));
END $$;

CREATE OR REPLACE FUNCTION q3c_sindist(double precision, double precision, double precision, double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT pow(sin(radians($2 - $4) / 2), 2)
     + pow(sin(radians($1 - $3) / 2), 2) * (pow(cos(radians($2 + $4) / 2), 2) - pow(sin(radians($2 - $4) / 2), 2))
$$;

CREATE OR REPLACE FUNCTION q3c_dist(ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT 2 * asin(sqrt(@extschema@.q3c_sindist(ra1, dec1, ra2, dec2))) * 57.295779513082320876798154814105::float8
$$;

-- Half-width h (gnomonic plane units, with margin) of the box holding a circle of radius r (degrees)
-- on any face it reaches; Infinity when r is too large for the box argument.
CREATE OR REPLACE FUNCTION q3c_compat_h(r double precision) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE rr double precision := radians(abs(r)); t double precision;
BEGIN
  IF NOT (rr < 0.5) THEN RETURN 'Infinity'::float8; END IF;
  t := tan(0.9553166181245093 + rr + 1e-7);
  RETURN rr * (1 + t * t) * (1 + 1e-9) + 2e-9;
END $$;

-- Cell level s (cells of 2^s x 2^s finest cells) wider than the box of half-width q3c_compat_h(r).
CREATE OR REPLACE FUNCTION q3c_compat_s(r double precision) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE h double precision := @extschema@.q3c_compat_h(r); s integer := 0;
BEGIN
  IF NOT (h < 1) THEN RETURN 30; END IF;
  WHILE s < 30 AND (1::bigint << s) < 2 * h * 536870912 + 3 LOOP s := s + 1; END LOOP;
  RETURN s;
END $$;

-- All ranges covering the circle: an array lo1, hi1, .., lo4, hi4 (unused pairs are -1, -2: empty).
CREATE OR REPLACE FUNCTION q3c_compat_cover(ra0 double precision, dec0 double precision, r double precision)
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  rr double precision := radians(abs(r));
  h double precision := @extschema@.q3c_compat_h(r);
  s integer := @extschema@.q3c_compat_s(r);
  big boolean;
  cx double precision; cy double precision; cz double precision; cd double precision;
  d double precision; lim double precision; x double precision; y double precision;
  x0 bigint; x1 bigint; y0 bigint; y1 bigint; i bigint; j bigint; base bigint;
  lo bigint[]; hi bigint[]; mlo bigint[]; mhi bigint[]; n integer; k integer; out bigint[];
BEGIN
  IF NOT (abs(ra0) < 1e300 AND abs(dec0) < 1e300) THEN
    RETURN ARRAY[-1, -2, -1, -2, -1, -2, -1, -2]::bigint[];
  END IF;
  cd := cos(radians(dec0)); cz := sin(radians(dec0));
  cx := cd * cos(radians(ra0)); cy := cd * sin(radians(ra0));
  big := NOT (h < 1);
  lim := 0.9553166181245093 + rr + 1e-7;  -- farthest angle from a face centre a reachable point can be
  LOOP
    lo := '{}'; hi := '{}';
    FOR f IN 0..5 LOOP
      d := CASE f WHEN 0 THEN cz WHEN 1 THEN cx WHEN 2 THEN cy WHEN 3 THEN -cx WHEN 4 THEN -cy ELSE -cz END;
      IF big THEN
        IF lim >= pi() OR d >= cos(lim) THEN
          lo := lo || (f::bigint << 60); hi := hi || ((f::bigint << 60) + ((1::bigint << 60) - 1));
        END IF;
        CONTINUE;
      END IF;
      CONTINUE WHEN d <= cos(lim);
      CASE f
        WHEN 0 THEN x := cy / cz; y := -cx / cz;
        WHEN 1 THEN x := cy / cx; y := cz / cx;
        WHEN 2 THEN x := -cx / cy; y := cz / cy;
        WHEN 3 THEN x := cy / cx; y := -cz / cx;
        WHEN 4 THEN x := -cx / cy; y := -cz / cy;
        ELSE x := -cy / cz; y := -cx / cz;
      END CASE;
      CONTINUE WHEN x - h > 1 OR x + h < -1 OR y - h > 1 OR y + h < -1;
      x0 := least(greatest(trunc((greatest(x - h, -1) + 1) * 536870912), 0), 1073741823)::bigint >> s;
      x1 := least(greatest(trunc((least(x + h, 1) + 1) * 536870912), 0), 1073741823)::bigint >> s;
      y0 := least(greatest(trunc((greatest(y - h, -1) + 1) * 536870912), 0), 1073741823)::bigint >> s;
      y1 := least(greatest(trunc((least(y + h, 1) + 1) * 536870912), 0), 1073741823)::bigint >> s;
      FOR i IN x0..x1 LOOP
        FOR j IN y0..y1 LOOP
          base := (f::bigint << 60) + (@extschema@.q3c_compat_morton(i, j) << (2 * s));
          lo := lo || base; hi := hi || (base + ((1::bigint << (2 * s)) - 1));
        END LOOP;
      END LOOP;
    END LOOP;
    -- sort and merge touching ranges
    SELECT array_agg(l ORDER BY l), array_agg(u ORDER BY l) INTO lo, hi FROM unnest(lo, hi) AS t(l, u);
    mlo := '{}'; mhi := '{}'; n := 0;
    FOR k IN 1..coalesce(array_length(lo, 1), 0) LOOP
      IF n > 0 AND lo[k] <= mhi[n] + 1 THEN
        mhi[n] := greatest(mhi[n], hi[k]);
      ELSE
        n := n + 1; mlo[n] := lo[k]; mhi[n] := hi[k];
      END IF;
    END LOOP;
    EXIT WHEN n <= 4;
    IF s >= 30 THEN big := true; ELSE s := s + 1; END IF;
  END LOOP;
  out := '{}';
  FOR k IN 1..4 LOOP
    IF k <= n THEN out := out || mlo[k] || mhi[k]; ELSE out := out || (-1)::bigint || (-2)::bigint; END IF;
  END LOOP;
  RETURN out;
END $$;

-- Bound k (0..7: range k / 2, low end when k is even) of the covering, per outer row of a join; NULL for
-- an unused range (a NULL bound makes the B-tree skip that range without descending the index, and a
-- constant NULL range folds away in a cone). Every bound of every outer row is one call of this
-- function, so it is kept to a few statements (each PL/pgSQL statement costs about as much as ten
-- operators): fast path when the box lies well inside the centre's face (0 <= ra0 < 360): the 2 x 2
-- cells of level s around it; elsewhere q3c_compat_cover.
CREATE OR REPLACE FUNCTION q3c_compat_nearby_it(ra0 double precision, dec0 double precision, r double precision,
                                                h double precision, s integer, k integer)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE x double precision; y double precision; f bigint; c bigint; w bigint;
BEGIN
  IF ra0 >= 0 AND ra0 < 360 AND dec0 > -90 AND dec0 < 90 AND h < 0.25 THEN
    -- gnomonic x, y on the equatorial face (1 / cos(a) = sqrt(1 + tan(a)^2)) ...
    x := tan(radians(ra0 - 90 * floor((ra0 + 45) / 90)));
    y := tan(radians(dec0)) * sqrt(1 + x * x);
    IF abs(y) >= 1 THEN
      -- ... or on a polar face (north 0, south 5), as q3c_ang2ipix projects
      y := 1 / tan(radians(dec0));
      x := sin(radians(ra0)) * abs(y);
      y := -cos(radians(ra0)) * y;
      f := CASE WHEN dec0 > 0 THEN 0 ELSE 5 END;
    END IF;
    IF abs(x) < 0.999999 - h AND abs(y) < 0.999999 - h THEN
      -- level-s cell column (row) of the box's low or high edge; a high edge in the low edge's cell
      -- makes the range unused
      c := floor((x + 1 + CASE WHEN k & 2 = 0 THEN -h ELSE h END) * (1::bigint << (29 - s)))::bigint;
      w := floor((y + 1 + CASE WHEN k & 4 = 0 THEN -h ELSE h END) * (1::bigint << (29 - s)))::bigint;
      RETURN CASE WHEN (k & 2 <> 0 AND c = floor((x + 1 - h) * (1::bigint << (29 - s)))::bigint)
                    OR (k & 4 <> 0 AND w = floor((y + 1 - h) * (1::bigint << (29 - s)))::bigint) THEN NULL
             ELSE (coalesce(f, (floor((ra0 + 45) / 90)::bigint & 3) + 1) << 60)
                  + (((@extschema@.q3c_compat_spread_table())[(c & 1023) + 1]
                      | ((@extschema@.q3c_compat_spread_table())[(w & 1023) + 1] << 1)
                      | ((@extschema@.q3c_compat_spread_table())[((c >> 10) & 1023) + 1] << 20)
                      | ((@extschema@.q3c_compat_spread_table())[((w >> 10) & 1023) + 1] << 21)
                      | CASE WHEN s >= 10 THEN 0
                             ELSE ((@extschema@.q3c_compat_spread_table())[(c >> 20) + 1] << 40)
                                  | ((@extschema@.q3c_compat_spread_table())[(w >> 20) + 1] << 41) END) << (2 * s))
                  + (k & 1) * ((1::bigint << (2 * s)) - 1) END;
    END IF;
  END IF;
  RETURN nullif(greatest((@extschema@.q3c_compat_cover(ra0, dec0, r))[k + 1], -1), -1);
END $$;

-- Join and cone: single SQL expressions the planner inlines, so that q3c_ang2ipix(ra, dec) BETWEEN lo AND hi
-- ranges reach a B-tree on q3c_ang2ipix(ra, dec); the bounds fold to constants when the centre is constant.
CREATE OR REPLACE FUNCTION q3c_join(leftra double precision, leftdec double precision,
                                    rightra double precision, rightdec double precision, radius double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT ((@extschema@.q3c_ang2ipix($3, $4) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 0)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 1))
     OR (@extschema@.q3c_ang2ipix($3, $4) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 2)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 3))
     OR (@extschema@.q3c_ang2ipix($3, $4) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 4)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 5))
     OR (@extschema@.q3c_ang2ipix($3, $4) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 6)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 7)))
   AND @extschema@.q3c_sindist($1, $2, $3, $4) < pow(sin(radians($5) / 2), 2)
$$;

CREATE OR REPLACE FUNCTION q3c_join(leftra double precision, leftdec double precision,
                                    rightra real, rightdec real, radius double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_join($1, $2, $3::double precision, $4::double precision, $5)
$$;

CREATE OR REPLACE FUNCTION q3c_radial_query(double precision, double precision, double precision,
                                            double precision, double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT ((@extschema@.q3c_ang2ipix($1, $2) BETWEEN @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 0)
                                  AND @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 1))
     OR (@extschema@.q3c_ang2ipix($1, $2) BETWEEN @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 2)
                                  AND @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 3))
     OR (@extschema@.q3c_ang2ipix($1, $2) BETWEEN @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 4)
                                  AND @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 5))
     OR (@extschema@.q3c_ang2ipix($1, $2) BETWEEN @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 6)
                                  AND @extschema@.q3c_compat_nearby_it($3, $4, $5, @extschema@.q3c_compat_h($5), @extschema@.q3c_compat_s($5), 7)))
   AND @extschema@.q3c_sindist($1, $2, $3, $4) < pow(sin(radians($5) / 2), 2)
$$;

CREATE OR REPLACE FUNCTION q3c_radial_query(real, real, double precision, double precision, double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_radial_query($1::double precision, $2::double precision, $3, $4, $5)
$$;

-- Proper motion: position 1 moved from epoch1 to epoch2 (pm in mas/yr; cosdec_flag = 1 when pmra
-- already includes cos(dec)); a NULL motion or epoch means no motion, as in q3c.
CREATE OR REPLACE FUNCTION q3c_compat_pm_ra(ra1 double precision, dec1 double precision, pmra1 double precision,
                                            pmdec1 double precision, cosdec_flag integer, epoch1 double precision,
                                            epoch2 double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN pmra1 IS NULL OR pmdec1 IS NULL OR epoch1 IS NULL OR epoch2 IS NULL THEN ra1
            WHEN cosdec_flag = 1 THEN ra1 + pmra1 / 3600000 * (epoch2 - epoch1) / cos(radians(dec1))
            ELSE ra1 + pmra1 / 3600000 * (epoch2 - epoch1) END
$$;

CREATE OR REPLACE FUNCTION q3c_compat_pm_dec(dec1 double precision, pmra1 double precision,
                                             pmdec1 double precision, epoch1 double precision,
                                             epoch2 double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN pmra1 IS NULL OR pmdec1 IS NULL OR epoch1 IS NULL OR epoch2 IS NULL THEN dec1
            ELSE dec1 + pmdec1 / 3600000 * (epoch2 - epoch1) END
$$;

CREATE OR REPLACE FUNCTION q3c_sindist_pm(ra1 double precision, dec1 double precision, pmra1 double precision,
                                          pmdec1 double precision, cosdec_flag integer, epoch1 double precision,
                                          ra2 double precision, dec2 double precision, epoch2 double precision)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN @extschema@.q3c_sindist(@extschema@.q3c_compat_pm_ra(ra1, dec1, pmra1, pmdec1, cosdec_flag, epoch1, epoch2),
                     @extschema@.q3c_compat_pm_dec(dec1, pmra1, pmdec1, epoch1, epoch2), ra2, dec2);
END $$;

CREATE OR REPLACE FUNCTION q3c_dist_pm(ra1 double precision, dec1 double precision, pmra1 double precision,
                                       pmdec1 double precision, cosdec_flag integer, epoch1 double precision,
                                       ra2 double precision, dec2 double precision, epoch2 double precision)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN 2 * asin(sqrt(@extschema@.q3c_sindist_pm(ra1, dec1, pmra1, pmdec1, cosdec_flag, epoch1, ra2, dec2, epoch2)))
         * 57.295779513082320876798154814105::float8;
END $$;

-- Search radius of a proper-motion join: radius plus the largest motion within max_epoch_delta years.
CREATE OR REPLACE FUNCTION q3c_compat_pm_radius(pmra double precision, pmdec double precision,
                                                max_epoch_delta double precision, radius double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT abs(radius) + coalesce(sqrt(pmra * pmra + pmdec * pmdec) * abs(max_epoch_delta) / 3600000 * 1.000001, 0)
$$;

CREATE OR REPLACE FUNCTION q3c_join_pm(left_ra double precision, left_dec double precision,
                                       left_pmra double precision, left_pmdec double precision,
                                       cosdec_flag integer, left_epoch double precision,
                                       right_ra double precision, right_dec double precision,
                                       right_epoch double precision, max_epoch_delta double precision,
                                       radius double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT ((@extschema@.q3c_ang2ipix($7, $8) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 0)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 1))
     OR (@extschema@.q3c_ang2ipix($7, $8) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 2)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 3))
     OR (@extschema@.q3c_ang2ipix($7, $8) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 4)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 5))
     OR (@extschema@.q3c_ang2ipix($7, $8) BETWEEN @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 6)
                                  AND @extschema@.q3c_compat_nearby_it($1, $2, @extschema@.q3c_compat_pm_radius($3, $4, $10, $11), @extschema@.q3c_compat_h(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), @extschema@.q3c_compat_s(@extschema@.q3c_compat_pm_radius($3, $4, $10, $11)), 7)))
   AND @extschema@.q3c_sindist_pm($1, $2, $3, $4, $5, $6, $7, $8, $9) < pow(sin(radians($11) / 2), 2)
$$;

-- Ellipse: semi-major axis maj_ax (degrees), axis ratio b/a, position angle pa (degrees east of north),
-- tested in the plane tangent at the ellipse centre.
CREATE OR REPLACE FUNCTION q3c_in_ellipse(ra0 double precision, dec0 double precision, ra_ell double precision,
                                          dec_ell double precision, maj_ax double precision,
                                          axis_ratio double precision, pa double precision)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  dra double precision := radians(ra0 - ra_ell);
  d0 double precision := radians(dec_ell); d double precision := radians(dec0);
  den double precision; xi double precision; eta double precision; u double precision; v double precision;
  a double precision; b double precision;
BEGIN
  den := sin(d0) * sin(d) + cos(d0) * cos(d) * cos(dra);
  IF den <= 0 THEN RETURN false; END IF;
  xi := cos(d) * sin(dra) / den;
  eta := (cos(d0) * sin(d) - sin(d0) * cos(d) * cos(dra)) / den;
  u := xi * sin(radians(pa)) + eta * cos(radians(pa));
  v := xi * cos(radians(pa)) - eta * sin(radians(pa));
  a := tan(radians(maj_ax)); b := a * axis_ratio;
  RETURN (u / a) ^ 2 + (v / b) ^ 2 < 1;
END $$;

CREATE OR REPLACE FUNCTION q3c_ellipse_query(ra_col double precision, dec_col double precision,
                                             ra_ell double precision, dec_ell double precision,
                                             majax double precision, axis_ratio double precision,
                                             pa double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_radial_query($1, $2, $3, $4, $5) AND @extschema@.q3c_in_ellipse($1, $2, $3, $4, $5, $6, $7)
$$;

CREATE OR REPLACE FUNCTION q3c_ellipse_join(leftra double precision, leftdec double precision,
                                            rightra double precision, rightdec double precision,
                                            majoraxis double precision, axisratio double precision,
                                            pa double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_join($1, $2, $3, $4, $5) AND @extschema@.q3c_in_ellipse($3, $4, $1, $2, $5, $6, $7)
$$;

-- Polygons: double precision[] {ra1, dec1, ra2, dec2, ...} or polygon ((ra1, dec1), ...), edges are great
-- circles. A point is inside when the crossing test says so in the plane tangent at the vertices' mean
-- direction (the gnomonic projection maps great circles to straight lines).
CREATE OR REPLACE FUNCTION q3c_compat_poly_array(poly polygon) RETURNS double precision[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT string_to_array(translate(poly::text, '()', ''), ',')::double precision[]
$$;

-- Bounding circle of a polygon: {ra, dec, radius} (degrees).
CREATE OR REPLACE FUNCTION q3c_compat_poly_circle(poly double precision[]) RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n integer := array_length(poly, 1) / 2; i integer;
  sx double precision := 0; sy double precision := 0; sz double precision := 0; norm double precision;
  cra double precision; cdec double precision; r double precision := 0;
BEGIN
  IF n IS NULL OR n < 3 THEN RAISE EXCEPTION 'q3c polygon needs at least 3 vertices'; END IF;
  FOR i IN 0..n - 1 LOOP
    sx := sx + cos(radians(poly[2 * i + 2])) * cos(radians(poly[2 * i + 1]));
    sy := sy + cos(radians(poly[2 * i + 2])) * sin(radians(poly[2 * i + 1]));
    sz := sz + sin(radians(poly[2 * i + 2]));
  END LOOP;
  norm := sqrt(sx * sx + sy * sy + sz * sz);
  cra := degrees(atan2(sy, sx)); cdec := degrees(asin(greatest(-1, least(1, sz / norm))));
  FOR i IN 0..n - 1 LOOP
    r := greatest(r, @extschema@.q3c_dist(cra, cdec, poly[2 * i + 1], poly[2 * i + 2]));
  END LOOP;
  RETURN ARRAY[cra, cdec, r * (1 + 1e-9) + 1e-9];
END $$;

CREATE OR REPLACE FUNCTION q3c_in_poly(double precision, double precision, double precision[])
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ra ALIAS FOR $1; decl ALIAS FOR $2; poly ALIAS FOR $3;
  c double precision[] := @extschema@.q3c_compat_poly_circle(poly);
  n integer := array_length(poly, 1) / 2; i integer; j integer;
  a0 double precision := radians(c[1]); d0 double precision := radians(c[2]);
  xs double precision[] := '{}'; ys double precision[] := '{}';
  dra double precision; d double precision; den double precision; px double precision; py double precision;
  inside boolean := false;
BEGIN
  FOR i IN 0..n LOOP
    IF i < n THEN dra := radians(poly[2 * i + 1]) - a0; d := radians(poly[2 * i + 2]);
    ELSE dra := radians(ra) - a0; d := radians(decl); END IF;
    den := sin(d0) * sin(d) + cos(d0) * cos(d) * cos(dra);
    IF den <= 0 THEN RETURN false; END IF;
    px := cos(d) * sin(dra) / den;
    py := (cos(d0) * sin(d) - sin(d0) * cos(d) * cos(dra)) / den;
    xs := xs || px; ys := ys || py;
  END LOOP;
  px := xs[n + 1]; py := ys[n + 1];
  j := n;
  FOR i IN 1..n LOOP
    IF (ys[i] > py) <> (ys[j] > py)
       AND px < (xs[j] - xs[i]) * (py - ys[i]) / (ys[j] - ys[i]) + xs[i] THEN
      inside := NOT inside;
    END IF;
    j := i;
  END LOOP;
  RETURN inside;
END $$;

CREATE OR REPLACE FUNCTION q3c_in_poly(double precision, double precision, polygon)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_in_poly($1, $2, @extschema@.q3c_compat_poly_array($3))
$$;

CREATE OR REPLACE FUNCTION q3c_poly_query(double precision, double precision, double precision[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_radial_query($1, $2, (@extschema@.q3c_compat_poly_circle($3))[1], (@extschema@.q3c_compat_poly_circle($3))[2],
                        (@extschema@.q3c_compat_poly_circle($3))[3])
   AND @extschema@.q3c_in_poly($1, $2, $3)
$$;

CREATE OR REPLACE FUNCTION q3c_poly_query(double precision, double precision, polygon)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_poly_query($1, $2, @extschema@.q3c_compat_poly_array($3))
$$;

CREATE OR REPLACE FUNCTION q3c_poly_query(real, real, double precision[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_poly_query($1::double precision, $2::double precision, $3)
$$;

CREATE OR REPLACE FUNCTION q3c_poly_query(real, real, polygon)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT @extschema@.q3c_poly_query($1::double precision, $2::double precision, @extschema@.q3c_compat_poly_array($3))
$$;
