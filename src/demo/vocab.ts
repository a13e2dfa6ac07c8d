// The needle language's vocabulary. Generated from models/recipes/needle/vocab.json (the recipe's
// source of truth); test/demo checks that the two, and models/needle-demo/tokenizer.json, agree.
// Token ids: specials 0..3, then QUERY, KEYS, VALUES, FILLERS in this order.

export const SPECIALS: readonly string[] = ['<pad>', '<s>', '</s>', '<unk>'];
export const QUERY = 'recall';

/** 64 names: the keys of planted pairs. */
export const KEYS: readonly string[] = [
  'Alice', 'Bob', 'Carol', 'David', 'Emma', 'Frank', 'Grace', 'Henry', 'Irene', 'Jack', 'Karen', 'Leo',
  'Maria', 'Nathan', 'Olivia', 'Peter', 'Quinn', 'Rachel', 'Sam', 'Tina', 'Victor', 'Wendy', 'Xavier', 'Yara',
  'Zoe', 'Adam', 'Bella', 'Chris', 'Diana', 'Ethan', 'Fiona', 'George', 'Hannah', 'Ivan', 'Julia', 'Kevin',
  'Laura', 'Mark', 'Nina', 'Oscar', 'Paula', 'Ryan', 'Sofia', 'Tom', 'Uma', 'Vera', 'Walter', 'Anna',
  'Ben', 'Clara', 'Daniel', 'Elena', 'Felix', 'Gina', 'Hugo', 'Iris', 'James', 'Kate', 'Luke', 'Mia',
  'Noah', 'Owen', 'Rosa', 'Simon',
];

/** 128 three-digit numbers: the values. */
export const VALUES: readonly string[] = [
  '112', '120', '126', '131', '134', '138', '144', '159', '164', '165', '173', '187', '188', '191', '199', '210',
  '216', '219', '229', '238', '240', '245', '251', '253', '262', '264', '270', '279', '296', '297', '298', '302',
  '306', '312', '314', '325', '332', '339', '340', '349', '353', '360', '364', '373', '391', '392', '402', '405',
  '416', '421', '446', '451', '452', '464', '465', '479', '484', '485', '486', '488', '495', '499', '505', '510',
  '512', '517', '526', '533', '536', '555', '564', '567', '570', '585', '596', '599', '600', '606', '609', '615',
  '618', '619', '622', '629', '632', '641', '644', '652', '658', '670', '686', '692', '695', '698', '715', '721',
  '735', '738', '757', '759', '765', '772', '773', '776', '778', '779', '806', '807', '817', '818', '821', '822',
  '843', '846', '877', '882', '895', '913', '923', '927', '930', '933', '949', '950', '958', '959', '968', '979',
];

/** Common English words: everything else in a document. */
export const FILLERS: readonly string[] = [
  'the', 'of', 'and', 'to', 'in', 'that', 'was', 'it', 'his', 'he', 'is', 'with',
  'as', 'for', 'not', 'be', 'her', 'at', 'had', 'have', 'all', 'but', 'him', 'this',
  'by', 'my', 'on', 'from', 'which', 'so', 'she', 'were', 'one', 'or', 'there', 'been',
  'are', 'an', 'no', 'would', 'they', 'said', 'very', 'what', 'their', 'when', 'will', 'them',
  'we', 'your', 'could', 'now', 'some', 'more', 'out', 'then', 'up', 'into', 'if', 'do',
  'who', 'such', 'any', 'other', 'like', 'has', 'must', 'than', 'only', 'little', 'before', 'time',
  'over', 'down', 'much', 'may', 'should', 'did', 'see', 'can', 'though', 'about', 'its', 'know',
  'two', 'most', 'us', 'old', 'these', 'after', 'long', 'never', 'might', 'way', 'again', 'good',
  'think', 'great', 'own', 'say', 'last', 'every', 'our', 'well', 'how', 'still', 'first', 'being',
  'yet', 'here', 'head', 'day', 'without', 'made', 'those', 'away', 'too', 'ever', 'come', 'where',
  'go', 'room', 'came', 'soon', 'three', 'through', 'make', 'nothing', 'off', 'hand', 'side', 'while',
  'same', 'thought', 'round', 'back', 'even', 'many', 'heard', 'seen', 'saw', 'night', 'found', 'just',
  'eyes', 'once', 'young', 'tell', 'thing', 'look', 'take', 'far', 'life', 'almost', 'half', 'work',
  'house', 'whole', 'always', 'give', 'world', 'part', 'something', 'face', 'morning', 'place', 'few', 'right',
  'enough', 'against', 'between', 'both', 'small', 'done', 'went', 'quite', 'door', 'left', 'each', 'white',
  'let', 'among', 'friend', 'does', 'moment', 'having', 'water', 'under', 'dear', 'hands', 'get', 'another',
  'better', 'years', 'air', 'mind', 'family', 'things', 'business', 'find', 'looked', 'took', 'sure', 'full',
  'end', 'called', 'hope', 'also', 'least', 'garden', 'river', 'bridge', 'road', 'stone', 'tree', 'forest',
  'hill', 'field', 'city', 'street', 'market', 'church', 'school', 'village', 'island', 'winter', 'summer', 'spring',
  'autumn', 'rain', 'snow', 'wind', 'cloud', 'storm', 'sky', 'star', 'moon', 'bird', 'horse', 'dog',
  'cat', 'sheep', 'cow', 'bread', 'milk', 'cheese', 'apple', 'wine', 'tea', 'coffee', 'sugar', 'salt',
  'paper', 'book', 'pen', 'chair', 'glass', 'bottle', 'cup', 'plate', 'knife', 'box', 'bag', 'coat',
  'hat', 'shoe', 'ship', 'train', 'cart', 'wheel', 'wall', 'floor', 'roof', 'kitchen', 'lamp', 'candle',
  'clock', 'bell', 'song', 'music', 'dance', 'game', 'story', 'dream', 'color', 'green', 'blue', 'red',
  'yellow', 'brown', 'grey', 'warm', 'cold', 'quiet', 'loud', 'soft', 'slow', 'quick', 'bright', 'dark',
  'early', 'late', 'clean', 'simple', 'careful', 'gentle', 'busy', 'empty', 'heavy', 'narrow', 'wide', 'deep',
  'tall', 'fresh', 'sweet',
];

/** Every token in id order. */
export const WORDS: readonly string[] = [...SPECIALS, QUERY, ...KEYS, ...VALUES, ...FILLERS];
