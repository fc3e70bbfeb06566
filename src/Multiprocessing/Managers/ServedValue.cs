using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="ValueProxy{T}"/>.</summary>
internal sealed class ServedValue(byte[] initial) : ServedObject
{
    private byte[] _value = initial;

    public override ServedKind Kind => ServedKind.Value;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (this)
        {
            switch (op)
            {
                case ManagerOp.ValueGet: reply.Write(_value); break;
                case ManagerOp.ValueSet: _value = ReadBlob(ref args); break;
                case ManagerOp.ValueUpdate:
                    _value = ServedCode.UpdateValue(ServedCode.ReadDelegate(ref args), _value);
                    reply.Write(_value);
                    break;
                default: throw Unknown(op, Kind);
            }
        }
    }
}
